package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relay-dev/relay/codec"
	"github.com/relay-dev/relay/poller"
)

// BenchmarkFanOut writes one batch frame to every member of an event over
// real loopback connections whose clients read and discard. It reports the
// cost per delivered frame; allocations per op are the fan-out's own and
// must stay zero.
func BenchmarkFanOut(b *testing.B) {
	for _, members := range []int{100, 1000, 10_000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			_, e := benchEvent(b, members)
			var enc codec.Encoder
			batch := benchBatch(10)
			buf := enc.AppendBatch(make([]byte, poller.MaxHeaderLen), batch)
			frame := poller.PrepareFrame(buf)
			w := e.worker
			b.SetBytes(int64(len(frame) * members))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				w.writeAll(e, frame)
			}
			b.StopTimer()
			perFrame := float64(b.Elapsed().Nanoseconds()) / float64(b.N*members)
			b.ReportMetric(perFrame, "ns/frame")
		})
	}
}

// BenchmarkFlush is the whole tick of one busy event: encode the batch once
// and write it to every member. Its allocations are per batch (the frame
// buffer handed to the bridge), never per member.
func BenchmarkFlush(b *testing.B) {
	for _, members := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			_, e := benchEvent(b, members)
			w := e.worker
			p := newPending()
			users := make([]string, 10)
			for u := range users {
				users[u] = fmt.Sprint("user", u)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for u, user := range users {
					p.cursor(user, float64(i), float64(u))
				}
				w.sendBatch(e, p)
				p.reset()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/frame")
		})
	}
}

func benchBatch(cursors int) *codec.Batch {
	bt := &codec.Batch{Node: "bench", Seq: 1, TS: time.Now().UnixMilli()}
	for i := range cursors {
		bt.Cursors = append(bt.Cursors, codec.Cursor{User: fmt.Sprint("user-", i), X: float64(i), Y: 0.5})
	}
	return bt
}

// benchEvent starts a node with one event of n members, each a real client
// in a child process (so that 10,000 members fit the per-process open-file
// limit) that reads and discards everything, and returns once the event's
// worker has all of them as members.
func benchEvent(b *testing.B, n int) (*Server, *event) {
	b.Helper()
	srv, err := New(Config{Addr: "127.0.0.1:0", Node: "bench", Tick: time.Hour, MaxPending: 64 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	startSink(b, srv.Addr(), n)
	sh := &srv.registry.shards[srv.registry.hash("bench")%registryShards]
	sh.mu.Lock()
	e := sh.events["bench"]
	sh.mu.Unlock()
	// The worker applies joins when it flushes; with an hour-long tick,
	// ask for flushes until the member list is full.
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.worker.mu.Lock()
		e.worker.readyQ = append(e.worker.readyQ, e)
		e.worker.mu.Unlock()
		e.worker.signal()
		time.Sleep(20 * time.Millisecond)
		e.mu.Lock()
		pendingAdds, conns := len(e.adds), e.conns
		e.mu.Unlock()
		if pendingAdds == 0 && conns == n {
			return srv, e
		}
		if time.Now().After(deadline) {
			b.Fatalf("event has %d of %d members", conns, n)
		}
	}
}

// startSink runs this test binary again as a sink holding n members.
func startSink(b *testing.B, addr string, n int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("RELAY_FANOUT_SINK=%s,%d", addr, n))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		b.Fatalf("sink: %q %v", line, err)
	}
}

func TestMain(m *testing.M) {
	if spec := os.Getenv("RELAY_FANOUT_SINK"); spec != "" {
		runSink(spec)
		return
	}
	os.Exit(m.Run())
}

// runSink joins the bench event with n members that read and discard, says
// "ready", and holds them until its standard input closes.
func runSink(spec string) {
	addr, count, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(count)
	for i := range n {
		u := url.URL{Scheme: "ws", Host: addr, Path: "/v1/events/bench/ws", RawQuery: fmt.Sprintf("user=u%d", i)}
		c, _, err := websocket.DefaultDialer.Dial(u.String(), nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sink: dial %d: %v\n", i, err)
			os.Exit(1)
		}
		nc := c.NetConn()
		go func() { _, _ = io.Copy(io.Discard, nc) }()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
