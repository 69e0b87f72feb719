package server

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// fakeConn records the frames a session is sent; it stands in for a
// network connection in these unit tests.
type fakeConn struct {
	mu      sync.Mutex
	frames  [][]byte
	pending int
	closed  int
}

func (f *fakeConn) WriteFrame(frame []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames = append(f.frames, append([]byte(nil), frame...))
	return nil
}
func (f *fakeConn) Pending() int                 { return f.pending }
func (f *fakeConn) Ping() error                  { return nil }
func (f *fakeConn) CloseWith(code int, _ string) { f.closed = code }
func (f *fakeConn) LastRead() time.Time          { return time.Now() }

// payloads decodes every frame written so far (skipping the 2-to-10-byte
// WebSocket header) as a map.
func (f *fakeConn) payloads(t *testing.T) []map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, fr := range f.frames {
		hdr := 2
		switch fr[1] & 0x7f {
		case 126:
			hdr = 4
		case 127:
			hdr = 10
		}
		var m map[string]any
		if err := msgpack.Unmarshal(fr[hdr:], &m); err != nil {
			t.Fatalf("frame %x: %v", fr, err)
		}
		out = append(out, m)
	}
	return out
}

// unitServer is a node whose workers are driven by hand: nothing runs in
// the background, so every flush happens where the test says.
func unitServer(t *testing.T) *Server {
	t.Helper()
	srv, err := New(Config{Node: "unit", Tick: time.Hour, Workers: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func (srv *Server) joinFake(user string) (*session, *fakeConn) {
	fc := &fakeConn{}
	s := &session{srv: srv, conn: fc, user: user, eventID: "ev", index: -1}
	srv.registry.join(s)
	return s, fc
}

// flushReady runs what the worker would: every queued immediate flush.
func (w *worker) flushReady() {
	w.mu.Lock()
	ready := w.readyQ
	w.readyQ = nil
	w.mu.Unlock()
	for _, e := range ready {
		w.flush(e)
	}
}

func TestCursorBurstCoalescesToTheLatestPerUser(t *testing.T) {
	srv := unitServer(t)
	a, fa := srv.joinFake("a")
	b, _ := srv.joinFake("b")
	w := srv.workers[0]
	w.flushReady() // the joins
	before := len(fa.payloads(t))

	for i := 1; i <= 10; i++ {
		a.event.cursor("a", float64(i), 0)
		b.event.cursor("b", 0, float64(i))
	}
	w.flushReady() // the follow-up is an hour away: nothing is ready
	if n := len(fa.payloads(t)); n != before {
		t.Fatalf("%d batches sent within the tick after a batch; want none before the follow-up", n-before)
	}
	w.flush(a.event) // the follow-up
	got := fa.payloads(t)[before:]
	if len(got) != 1 {
		t.Fatalf("%d batches, want 1", len(got))
	}
	cur := got[0]["cur"].([]any)
	if len(cur) != 2 {
		t.Fatalf("cur = %v, want one entry per user", cur)
	}
	last := map[string]float64{}
	for _, e := range cur {
		entry := e.([]any)
		x, y := entry[1].(float64), entry[2].(float64)
		last[entry[0].(string)] = x + y
	}
	if last["a"] != 10 || last["b"] != 10 {
		t.Fatalf("cur = %v, want each user's latest position", cur)
	}
}

func TestActionsKeepArrivalOrderAndExactBytes(t *testing.T) {
	srv := unitServer(t)
	a, fa := srv.joinFake("a")
	w := srv.workers[0]
	w.flushReady()
	raws := [][]byte{{0x01}, {0xa1, 'x'}, {0x92, 0xc2, 0xc3}}
	for _, r := range raws {
		a.event.action("a", r)
	}
	w.flush(a.event)
	fa.mu.Lock()
	frame := fa.frames[len(fa.frames)-1]
	fa.mu.Unlock()
	// "act":[["a",<raw>],["a",<raw>],["a",<raw>]], the raws unchanged.
	want := []byte{0xa3, 'a', 'c', 't', 0x93}
	for _, r := range raws {
		want = append(append(want, 0x92, 0xa1, 'a'), r...)
	}
	if !bytes.Contains(frame, want) {
		t.Fatalf("batch %x does not hold the actions in order as sent (%x)", frame, want)
	}
}

func TestSeqCountsBatchesAndRestartsWithANewEvent(t *testing.T) {
	srv := unitServer(t)
	a, fa := srv.joinFake("a")
	w := srv.workers[0]
	w.flushReady()
	for i := range 3 {
		a.event.cursor("a", float64(i), 0)
		w.flush(a.event)
	}
	var seqs []uint64
	for _, p := range fa.payloads(t)[1:] {
		seqs = append(seqs, toUint(p["seq"]))
	}
	if len(seqs) != 4 || seqs[0] != 1 || seqs[3] != 4 {
		t.Fatalf("seqs %v, want 1..4 (join, then three batches)", seqs)
	}
	// The event empties and is retired; a new member starts a new stream.
	old := a.event
	old.leave(a)
	w.flush(old) // the leave
	w.flush(old) // the follow-up finds nothing and retires the event
	_, fb := srv.joinFake("b")
	if fb == nil || srv.registry.shards[srv.registry.hash("ev")%registryShards].events["ev"] == old {
		t.Fatal("the emptied event was not retired")
	}
	w.flushReady()
	p := fb.payloads(t)
	if toUint(p[len(p)-1]["seq"]) != 1 {
		t.Fatalf("new stream starts at seq %v, want 1", p[len(p)-1]["seq"])
	}
}

func TestSlowMemberIsClosedAndOthersStillGetTheBatch(t *testing.T) {
	srv := unitServer(t)
	a, fa := srv.joinFake("a")
	_, fslow := srv.joinFake("slow")
	w := srv.workers[0]
	w.flushReady()
	fslow.pending = srv.cfg.MaxPending + 1
	before := len(fa.payloads(t))
	a.event.action("a", []byte{0x01})
	w.flush(a.event)
	if fslow.closed != CloseTryAgainLater {
		t.Fatalf("slow member closed with %d, want %d", fslow.closed, CloseTryAgainLater)
	}
	if len(fa.payloads(t)) != before+1 {
		t.Fatal("the member that keeps up did not get the batch")
	}
}

func toUint(v any) uint64 {
	switch n := v.(type) {
	case uint8:
		return uint64(n)
	case uint16:
		return uint64(n)
	case uint32:
		return uint64(n)
	case uint64:
		return n
	case int8:
		return uint64(n)
	case int64:
		return uint64(n)
	}
	return 0
}

var _ Conn = (*fakeConn)(nil)
