package loadgen

import (
	"bytes"
	"testing"

	"github.com/relay-dev/relay/codec"
)

func TestCloseFrameCountsDrop(t *testing.T) {
	sh, c, sock := testConn(t, "me", "n1")
	sh.receive(c, append(serverFrame(opClose, true, []byte{0x03, 0xf5, 's', 'l', 'o', 'w'}, nil), binFrame([]byte{0x80})...), 2)
	if got := sh.t.dropped.snapshot(); got["close-1013"] != 1 || len(got) != 1 {
		t.Fatalf("dropped %v", got)
	}
	w := sock.written(t)
	if len(w) != 1 || w[0].op != opClose || closeCode(w[0].payload) != 1013 || !sock.closed {
		t.Fatalf("want a close echo and a closed socket; wrote %+v closed %v", w, sock.closed)
	}
	if sh.framesIn != 2 {
		t.Fatalf("frames after the close frame were read: framesIn %d", sh.framesIn)
	}
	// The socket's end is then reported: counted once, up goes down.
	sh.gone(c, nil)
	sh.gone(c, nil)
	if got := sh.t.dropped.snapshot(); len(got) != 1 || sh.t.up.Load() != 0 {
		t.Fatalf("after gone: dropped %v up %d", got, sh.t.up.Load())
	}
}

func TestCloseWithoutCode(t *testing.T) {
	sh, c, _ := testConn(t, "me", "n1")
	sh.receive(c, serverFrame(opClose, true, nil, nil), 2)
	if got := sh.t.dropped.snapshot(); got["close-1005"] != 1 {
		t.Fatalf("dropped %v", got)
	}
}

func TestOurCloseIsNotADrop(t *testing.T) {
	sh, c, sock := testConn(t, "me", "n1")
	c.state.Store(stClosing)
	sh.receive(c, serverFrame(opClose, true, []byte{0x03, 0xe8}, nil), 2)
	sh.gone(c, nil)
	if got := sh.t.dropped.snapshot(); len(got) != 0 {
		t.Fatalf("dropped %v", got)
	}
	if len(sock.written(t)) != 0 || !sock.closed {
		t.Fatal("the answer to our close must close the socket without another close frame")
	}
}

func TestSocketEndIsADrop(t *testing.T) {
	sh, c, _ := testConn(t, "me", "n1")
	sh.gone(c, nil)
	if got := sh.t.dropped.snapshot(); got["eof"] != 1 {
		t.Fatalf("dropped %v", got)
	}
}

func TestPingGetsMaskedPong(t *testing.T) {
	sh, c, sock := testConn(t, "me", "n1")
	sh.receive(c, serverFrame(opPing, true, []byte("tick"), nil), 2)
	w := sock.written(t)
	if len(w) != 1 || w[0].op != opPong || !bytes.Equal(w[0].payload, []byte("tick")) {
		t.Fatalf("wrote %+v", w)
	}
}

func TestBadFrameClosesConn(t *testing.T) {
	sh, c, sock := testConn(t, "me", "n1")
	sh.receive(c, []byte{0xf2, 0x00}, 2)
	if got := sh.t.dropped.snapshot(); got["bad-frame"] != 1 || !sock.closed {
		t.Fatalf("dropped %v closed %v", got, sock.closed)
	}
}

func TestWelcomeCountsUp(t *testing.T) {
	sh, c, _ := testConn(t, "me", "n1")
	if sh.t.up.Load() != 1 || c.state.Load() != stUp {
		t.Fatalf("up %d state %d", sh.t.up.Load(), c.state.Load())
	}
}

// actions sends one batch of action entries from user to c at now.
func actions(sh *shard, c *conn, node string, now int64, user string, tag uint32, ns ...uint64) {
	b := &codec.Batch{Node: node, Seq: 1, TS: now / 1e6}
	for _, n := range ns {
		b.Actions = append(b.Actions, codec.Action{User: user, Data: stamp(now-2e6, tag, n)})
	}
	sh.receive(c, batchFrame(b), now)
}

func TestActionAccounting(t *testing.T) {
	const now = 1_796_300_000_000_000_000
	sh, c, _ := testConn(t, "me", "n1")
	sh.begin(1)
	actions(sh, c, "n1", now, "alice", 1, 1, 2, 3)
	actions(sh, c, "n1", now, "alice", 1, 3, 2) // duplicates
	actions(sh, c, "n1", now, "alice", 1, 6)    // 4 and 5 missing
	actions(sh, c, "n2", now, "bob", 1, 2)      // 1 missing
	actions(sh, c, "n1", now, "me", 1, 1, 1)    // own: ignored
	ph := sh.ph
	if ph.actionsReceived != 5 || ph.duplicates != 2 || ph.gaps != 3 {
		t.Fatalf("received %d duplicates %d gaps %d", ph.actionsReceived, ph.duplicates, ph.gaps)
	}
	if ph.actionSame.TotalCount() != 4 || ph.actionCross.TotalCount() != 1 {
		t.Fatalf("same %d cross %d", ph.actionSame.TotalCount(), ph.actionCross.TotalCount())
	}
	if v := ph.actionSame.Max(); v < 1990 || v > 2010 {
		t.Fatalf("latency %d µs, want 2000", v)
	}
	// The phase ends: entries of it count for nothing, but the stream of
	// the next phase starts again at 1.
	sh.open = false
	actions(sh, c, "n1", now, "alice", 1, 7)
	if ph.actionsReceived != 5 {
		t.Fatal("an entry after the phase ended was counted")
	}
	sh.begin(2)
	actions(sh, c, "n1", now, "alice", 2, 1, 2)
	actions(sh, c, "n1", now, "alice", 1, 8) // a straggler from phase 1
	if ph.actionsReceived != 2 || ph.duplicates != 0 || ph.gaps != 0 {
		t.Fatalf("phase 2: received %d duplicates %d gaps %d", ph.actionsReceived, ph.duplicates, ph.gaps)
	}
}

func TestActionsOfNextPhaseStartItEarly(t *testing.T) {
	const now = 1_796_300_000_000_000_000
	sh, c, _ := testConn(t, "me", "n1")
	sh.begin(1)
	actions(sh, c, "n1", now, "alice", 1, 1)
	sh.open = false
	// Another worker started phase 2 before this one got its command.
	actions(sh, c, "n1", now, "alice", 2, 1, 2)
	sh.begin(2) // the command arrives: nothing is reset
	actions(sh, c, "n1", now, "alice", 2, 3)
	if sh.ph.actionsReceived != 3 || sh.ph.gaps != 0 {
		t.Fatalf("received %d gaps %d", sh.ph.actionsReceived, sh.ph.gaps)
	}
}

func TestCursorsAndLag(t *testing.T) {
	const now = 1_796_300_000_000_000_000
	sh, c, _ := testConn(t, "me", "n1")
	sh.begin(1)
	sentMS := float64(now-3e6) / 1e6
	b := &codec.Batch{Node: "n2", Seq: 9, TS: now/1e6 - 1,
		Cursors: []codec.Cursor{{User: "alice", X: sentMS, Y: 1}, {User: "me", X: 0, Y: 0}}}
	sh.receive(c, batchFrame(b), now)
	ph := sh.ph
	if ph.cursorsReceived != 1 || ph.cursorCross.TotalCount() != 1 || ph.cursorSame.TotalCount() != 0 {
		t.Fatalf("received %d cross %d same %d", ph.cursorsReceived, ph.cursorCross.TotalCount(), ph.cursorSame.TotalCount())
	}
	if v := ph.cursorCross.Max(); v < 2990 || v > 3010 {
		t.Fatalf("cursor latency %d µs, want 3000", v)
	}
	if n := ph.lag.TotalCount(); n != 0 {
		t.Fatalf("a batch from another node counted as receive lag (%d): it carries the broker's delay", n)
	}
}
