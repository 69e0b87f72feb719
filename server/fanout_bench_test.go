package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
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
	for _, members := range []int{100, 1000, 5000} {
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
// that reads and discards everything, and returns once the event's worker
// has all of them as members.
func benchEvent(b *testing.B, n int) (*Server, *event) {
	b.Helper()
	srv, err := New(Config{Addr: "127.0.0.1:0", Node: "bench", Tick: time.Hour,
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
	for i := range n {
		u := url.URL{Scheme: "ws", Host: srv.Addr(), Path: "/v1/events/bench/ws", RawQuery: fmt.Sprintf("user=u%d", i)}
		c, _, err := websocket.DefaultDialer.Dial(u.String(), nil)
		if err != nil {
			b.Fatalf("dial %d: %v (raise the open-file limit for large member counts)", i, err)
		}
		nc := c.NetConn()
		go func() { _, _ = io.Copy(io.Discard, nc) }()
		b.Cleanup(func() { _ = nc.Close() })
	}
	sh := &srv.registry.shards[srv.registry.hash("bench")%registryShards]
	sh.mu.Lock()
	e := sh.events["bench"]
	sh.mu.Unlock()
	// The worker applies joins when it flushes; with an hour-long tick,
	// wait for the member list to fill through an explicit flush.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := make(chan int)
		e.worker.mu.Lock()
		e.worker.readyQ = append(e.worker.readyQ, e)
		e.worker.mu.Unlock()
		e.worker.signal()
		go func() { time.Sleep(20 * time.Millisecond); done <- 0 }()
		<-done
		e.mu.Lock()
		pendingAdds := len(e.adds)
		e.mu.Unlock()
		if pendingAdds == 0 && e.conns == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("event has %d of %d members", e.conns, n)
		}
	}
	return srv, e
}
