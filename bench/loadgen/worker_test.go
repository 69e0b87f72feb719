package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"go.uber.org/goleak"

	"github.com/relay-dev/relay/server"
)

// startNode runs a standalone relay node on a free loopback port until the
// test ends.
func startNode(t *testing.T, node string) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{
		Addr: "127.0.0.1:0", Node: node, Tick: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// harness drives Main as the orchestrator would, over pipes.
type harness struct {
	t       *testing.T
	cmds    *json.Encoder
	stdin   *io.PipeWriter
	reports chan Report
	done    chan error
	stderr  strings.Builder
}

func startWorker(t *testing.T, cfg Config) *harness {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &harness{t: t, cmds: json.NewEncoder(inW), stdin: inW, reports: make(chan Report, 1024), done: make(chan error, 1)}
	errR, errW := io.Pipe()
	go func() {
		err := Main(inR, outW, errW)
		_ = outW.Close()
		_ = errW.Close()
		h.done <- err
	}()
	go func() {
		defer close(h.reports)
		dec := json.NewDecoder(outR)
		for {
			var r Report
			if err := dec.Decode(&r); err != nil {
				return
			}
			h.reports <- r
		}
	}()
	stderrDone := make(chan struct{})
	go func() { defer close(stderrDone); _, _ = io.Copy(&h.stderr, errR) }()
	t.Cleanup(func() {
		_ = inW.Close()
		<-stderrDone
		if t.Failed() {
			t.Logf("worker stderr:\n%s", h.stderr.String())
		}
	})
	if err := h.cmds.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) send(cmd Command) {
	h.t.Helper()
	if err := h.cmds.Encode(cmd); err != nil {
		h.t.Fatal(err)
	}
}

// wait returns the next report of type typ, failing on "error" reports.
func (h *harness) wait(typ string, timeout time.Duration) Report {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case r, ok := <-h.reports:
			if !ok {
				h.t.Fatalf("worker stopped before a %q report", typ)
			}
			if r.Type == "error" {
				h.t.Fatalf("worker error: %s", r.Error)
			}
			if r.Type == typ {
				return r
			}
		case <-deadline:
			h.t.Fatalf("no %q report within %v", typ, timeout)
		}
	}
}

// waitStatus waits for a status report that satisfies ok.
func (h *harness) waitStatus(what string, timeout time.Duration, ok func(*Status) bool) *Status {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r := h.wait("status", time.Until(deadline)); ok(r.Status) {
			return r.Status
		}
	}
	h.t.Fatalf("status never showed %s", what)
	return nil
}

// layout is n members in events of size members each; the first member of
// each event sends (ranks 0, 1, ...).
func layout(addr string, n, members int) []Conn {
	var conns []Conn
	events := n / members
	for i := range n {
		rank := -1
		if i < events {
			rank = i
		}
		conns = append(conns, Conn{Addr: addr, Event: fmt.Sprintf("ev-%d", i%events), User: fmt.Sprintf("u%04d", i),
			SenderRank: rank, EventSize: members})
	}
	return conns
}

func hist(t *testing.T, name string, s *hdrhistogram.Snapshot) *hdrhistogram.Histogram {
	t.Helper()
	if s == nil {
		t.Fatalf("%s: no histogram", name)
	}
	return hdrhistogram.Import(s)
}

func checkPhase(t *testing.T, p *Phase, senders, members int, hz float64, seconds float64) {
	t.Helper()
	t.Logf("phase %q: %d ms, cursors sent %d received %d, actions sent %d expected %d received %d, dup %d gaps %d, missed %d",
		p.Name, p.DurationMS, p.CursorsSent, p.CursorsReceived, p.ActionsSent, p.ActionsExpected, p.ActionsReceived,
		p.ActionDuplicates, p.ActionGaps, p.MissedSlots)
	if min := uint64(float64(senders) * hz * seconds * 0.6); p.ActionsSent < min {
		t.Fatalf("actions sent %d, want at least %d", p.ActionsSent, min)
	}
	if want := p.ActionsSent * uint64(members-1); p.ActionsReceived != want || p.ActionsExpected != want {
		t.Fatalf("actions received %d, expected %d, want %d (sent %d × %d others)",
			p.ActionsReceived, p.ActionsExpected, want, p.ActionsSent, members-1)
	}
	if p.ActionDuplicates != 0 || p.ActionGaps != 0 {
		t.Fatalf("duplicates %d gaps %d", p.ActionDuplicates, p.ActionGaps)
	}
	if p.CursorsReceived == 0 {
		t.Fatal("no cursors received")
	}
	for name, s := range map[string]*hdrhistogram.Snapshot{"cursor_same": p.CursorSame, "action_same": p.ActionSame, "receive_lag": p.ReceiveLag} {
		h := hist(t, name, s)
		t.Logf("%s: n=%d p50=%dµs p99=%dµs max=%dµs", name, h.TotalCount(), h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max())
		if h.TotalCount() == 0 || h.Max() >= 5_000_000 {
			t.Fatalf("%s: %d values, max %d µs", name, h.TotalCount(), h.Max())
		}
	}
	if n := hist(t, "cursor_cross", p.CursorCross).TotalCount() + hist(t, "action_cross", p.ActionCross).TotalCount(); n != 0 {
		t.Fatalf("%d cross-node entries from a single node", n)
	}
}

func TestWorkerAgainstNode(t *testing.T) {
	srv := startNode(t, "n1")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const conns, members = 200, 20
	h := startWorker(t, Config{
		Worker: 3, Conns: layout(srv.Addr(), conns, members), SourceAddrs: []string{"127.0.0.2", "127.0.0.3"},
		DialRate: 2000, DialConcurrency: 16, StatusEveryMS: 50,
	})

	h.send(Command{Cmd: "dial"})
	r := h.wait("dialed", 20*time.Second)
	if r.Worker != 3 || r.Status.Dialed != conns || len(r.Status.DialFailed) != 0 {
		t.Fatalf("dialed: worker %d, %d handshakes, failures %v", r.Worker, r.Status.Dialed, r.Status.DialFailed)
	}
	h.waitStatus("every connection up", 5*time.Second, func(s *Status) bool { return s.Up == conns })

	h.send(Command{Cmd: "phase", Phase: "p1", Senders: 10, CursorHz: 20, ActionHz: 5})
	time.Sleep(1500 * time.Millisecond)
	h.send(Command{Cmd: "end_phase"})
	p1 := h.wait("phase", 10*time.Second).Phase
	if p1.Name != "p1" {
		t.Fatalf("phase name %q", p1.Name)
	}
	checkPhase(t, p1, 10, members, 5, 1.5)

	// A second phase with fewer senders: streams restart without false
	// gaps or duplicates.
	h.send(Command{Cmd: "phase", Phase: "p2", Senders: 5, CursorHz: 10, ActionHz: 10})
	time.Sleep(1000 * time.Millisecond)
	h.send(Command{Cmd: "end_phase", DrainMS: 300})
	checkPhase(t, h.wait("phase", 10*time.Second).Phase, 5, members, 10, 1)

	h.send(Command{Cmd: "close", Rate: 1000})
	closed := h.wait("closed", 20*time.Second).Status
	if closed.Up != 0 || closed.Extra["open"] != 0 || len(closed.Dropped) != 0 {
		t.Fatalf("after close: up %d open %d dropped %v", closed.Up, closed.Extra["open"], closed.Dropped)
	}

	// "dial" again reopens what is closed; "exit" closes it all.
	h.send(Command{Cmd: "dial"})
	if r := h.wait("dialed", 20*time.Second); r.Status.Dialed != 2*conns || len(r.Status.DialFailed) != 0 {
		t.Fatalf("second dial: %d handshakes in all, failures %v", r.Status.Dialed, r.Status.DialFailed)
	}
	h.waitStatus("every connection up again", 5*time.Second, func(s *Status) bool { return s.Up == conns })
	h.send(Command{Cmd: "exit"})
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

func TestWorkerDialFailures(t *testing.T) {
	srv := startNode(t, "n1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	_ = ln.Close()
	conns := []Conn{
		{Addr: srv.Addr(), Event: "good", User: "a", SenderRank: -1},
		{Addr: srv.Addr(), Event: "bad event!", User: "b", SenderRank: -1},
		{Addr: srv.Addr(), Event: "good", User: "bad user!", SenderRank: -1},
		{Addr: refused, Event: "good", User: "c", SenderRank: -1},
	}
	h := startWorker(t, Config{Conns: conns, SourceAddrs: []string{"127.0.0.4"}})
	h.send(Command{Cmd: "dial"})
	s := h.wait("dialed", 20*time.Second).Status
	if s.Dialed != 1 || s.DialFailed["http-400"] != 2 || s.DialFailed["refused"] != 1 {
		t.Fatalf("dialed %d, failures %v", s.Dialed, s.DialFailed)
	}
	// end_phase without a phase reports an empty one.
	h.send(Command{Cmd: "end_phase"})
	if p := h.wait("phase", 5*time.Second).Phase; p == nil || p.CursorSame == nil || p.ActionsReceived != 0 {
		t.Fatalf("empty phase: %+v", p)
	}
	// The end of stdin is an exit too, and closes the connections.
	_ = h.stdin.Close()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

func TestWorkerServerCloseIsADrop(t *testing.T) {
	srv := startNode(t, "n1")
	h := startWorker(t, Config{Conns: layout(srv.Addr(), 10, 5), StatusEveryMS: 20})
	h.send(Command{Cmd: "dial"})
	h.wait("dialed", 20*time.Second)
	h.waitStatus("every connection up", 5*time.Second, func(s *Status) bool { return s.Up == 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx) // closes every connection with 1001
	s := h.waitStatus("the drops", 5*time.Second, func(s *Status) bool { return s.Up == 0 })
	if s.Dropped["close-1001"] != 10 || len(s.Dropped) != 1 {
		t.Fatalf("dropped %v", s.Dropped)
	}
	h.send(Command{Cmd: "exit"})
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

func TestWorkerBadConfig(t *testing.T) {
	h := startWorker(t, Config{SourceAddrs: []string{"not-an-ip"}})
	r, ok := <-h.reports
	if !ok || r.Type != "error" || !strings.Contains(r.Error, "not-an-ip") {
		t.Fatalf("report %+v", r)
	}
	if err := <-h.done; err == nil {
		t.Fatal("Main returned nil for a bad config")
	}
}

func TestWorkerExitDuringDial(t *testing.T) {
	srv := startNode(t, "n1")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := startWorker(t, Config{Conns: layout(srv.Addr(), 100, 10), DialRate: 20})
	h.send(Command{Cmd: "dial"})
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	h.send(Command{Cmd: "exit"})
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit did not stop the dialing")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("exit took %v", d)
	}
}
