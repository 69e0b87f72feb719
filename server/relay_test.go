package server_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/server"
)

func TestWelcomeListsEveryoneIncludingYou(t *testing.T) {
	srv := startNode(t, server.Config{Node: "n1"})
	a := dial(t, srv, "ev1", "alice")
	if a.welcome.Me != "alice" || a.welcome.Event != "ev1" || a.welcome.Node != "n1" || !slices.Equal(a.welcome.Members, []string{"alice"}) {
		t.Fatalf("welcome = %+v", a.welcome)
	}
	b := dial(t, srv, "ev1", "bob")
	got := slices.Sorted(slices.Values(b.welcome.Members))
	if !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("bob's welcome members = %v", got)
	}
}

func TestOpenModePicksAUserWhenNoneGiven(t *testing.T) {
	srv := startNode(t, server.Config{})
	a := dial(t, srv, "ev", "")
	b := dial(t, srv, "ev", "")
	if !server.ValidUserID(a.welcome.Me) || a.welcome.Me == b.welcome.Me {
		t.Fatalf("generated users %q and %q", a.welcome.Me, b.welcome.Me)
	}
}

func TestBurstOfCursorMovesCoalescesToTheLatest(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 200 * time.Millisecond})
	watcher := dial(t, srv, "ev", "watcher")
	mover := dial(t, srv, "ev", "mover")
	watcher.until(func(b batch) bool { return slices.Contains(b.Join, "mover") })

	const moves = 50
	for i := 1; i <= moves; i++ {
		mover.cursor(float64(i), float64(-i)+0.5)
	}
	var seen int
	watcher.until(func(b batch) bool {
		x, y, ok := curOf(b, "mover")
		if !ok {
			return false
		}
		seen++
		return x == moves && y == -moves+0.5
	})
	// The first move goes out at once (leading edge), the rest of the
	// burst waits for the next tick and only its latest position is sent.
	if seen > 3 {
		t.Fatalf("%d batches carried the burst of %d moves, want at most 3", seen, moves)
	}
}

func TestCursorAppearsOncePerBatchPerUser(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 100 * time.Millisecond})
	w := dial(t, srv, "ev", "w")
	m := dial(t, srv, "ev", "m")
	for i := range 20 {
		m.cursor(float64(i), 0)
	}
	w.until(func(b batch) bool {
		n := 0
		for _, c := range b.Cur {
			if c[0] == "m" {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("user m appears %d times in one batch: %v", n, b.Cur)
		}
		x, _, ok := curOf(b, "m")
		return ok && x == 19
	})
}

func TestHundredActionsArriveOnceInOrderAtEveryMember(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 20 * time.Millisecond})
	sender := dial(t, srv, "ev", "sender")
	others := []*client{dial(t, srv, "ev", "o1"), dial(t, srv, "ev", "o2")}
	const n = 100
	for i := range n {
		sender.action(map[string]any{"i": i, "kind": "click"})
	}
	for _, c := range append(others, sender) {
		var got []int
		c.until(func(b batch) bool {
			for _, a := range b.Act {
				if a[0] != "sender" {
					t.Fatalf("action stamped %v, want sender", a[0])
				}
				m := a[1].(map[string]any)
				got = append(got, int(num(m["i"])))
			}
			return len(got) >= n
		})
		for i, v := range got {
			if v != i {
				t.Fatalf("member %s: action %d is %d; all: %v", c.welcome.Me, i, v, got)
			}
		}
		if len(got) != n {
			t.Fatalf("member %s got %d actions, want %d", c.welcome.Me, len(got), n)
		}
		c.quiet(100 * time.Millisecond)
	}
}

func TestActionBytesAreRelayedExactly(t *testing.T) {
	srv := startNode(t, server.Config{})
	a := dial(t, srv, "ev", "a")
	b := dial(t, srv, "ev", "b")
	// A map with keys in an order a re-encoder might not keep, and a
	// float32 that would widen if decoded and encoded again.
	d := []byte{0x82, 0xa1, 'z', 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xa1, 'a', 0xc0}
	a.send(append([]byte{0x82, 0xa1, 't', 0xa3, 'a', 'c', 't', 0xa1, 'd'}, d...))
	for {
		_, frame := b.read()
		var bt batch
		if err := msgpack.Unmarshal(frame, &bt); err != nil {
			t.Fatal(err)
		}
		if len(bt.Act) == 0 {
			continue
		}
		if !containsBytes(frame, d) {
			t.Fatalf("batch %x does not contain the action bytes %x", frame, d)
		}
		return
	}
}

func containsBytes(haystack, needle []byte) bool {
	for i := 0; i+len(needle) <= len(haystack); i++ {
		if string(haystack[i:i+len(needle)]) == string(needle) {
			return true
		}
	}
	return false
}

func TestEventsAreIsolated(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 20 * time.Millisecond})
	a := dial(t, srv, "red", "a")
	b := dial(t, srv, "blue", "b")
	b.next() // b's own join
	a.action("for red only")
	a.until(func(bt batch) bool { return len(bt.Act) == 1 })
	b.quiet(200 * time.Millisecond)
}

func TestJoinAndLeaveAreAnnounced(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 20 * time.Millisecond})
	a := dial(t, srv, "ev", "alice")
	b := dial(t, srv, "ev", "bob")
	a.until(func(bt batch) bool { return slices.Contains(bt.Join, "bob") })
	_ = b.conn.Close()
	a.until(func(bt batch) bool { return slices.Contains(bt.Leave, "bob") })
}

func TestUserLeavesWithTheirLastConnection(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 20 * time.Millisecond})
	a := dial(t, srv, "ev", "alice")
	tab1 := dial(t, srv, "ev", "bob")
	a.until(func(bt batch) bool { return slices.Contains(bt.Join, "bob") })
	tab2 := dial(t, srv, "ev", "bob")
	if n := len(tab2.welcome.Members); n != 2 {
		t.Fatalf("second tab's welcome lists %d members, want 2: %v", n, tab2.welcome.Members)
	}
	_ = tab1.conn.Close()
	tab2.cursor(1, 2) // proves bob is still present and reachable
	seq := a.until(func(bt batch) bool { _, _, ok := curOf(bt, "bob"); return ok })
	for _, bt := range seq {
		if slices.Contains(bt.Leave, "bob") || slices.Contains(bt.Join, "bob") {
			t.Fatalf("bob's second tab changed presence: %+v", bt)
		}
	}
	_ = tab2.conn.Close()
	a.until(func(bt batch) bool { return slices.Contains(bt.Leave, "bob") })
}

func TestLeaveAndRejoinWithinATickIsNoChange(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 400 * time.Millisecond})
	a := dial(t, srv, "ev", "alice")
	b := dial(t, srv, "ev", "bob")
	a.until(func(bt batch) bool { return slices.Contains(bt.Join, "bob") })
	// Within the tick after bob's join batch: bob leaves and comes back,
	// and carol comes and goes.
	_ = b.conn.Close()
	b2 := dial(t, srv, "ev", "bob")
	c := dial(t, srv, "ev", "carol")
	_ = c.conn.Close()
	b2.cursor(3, 4)
	seq := a.until(func(bt batch) bool { _, _, ok := curOf(bt, "bob"); return ok })
	for _, bt := range seq {
		if len(bt.Join)+len(bt.Leave) > 0 {
			t.Fatalf("net-zero presence changes were announced: %+v", bt)
		}
	}
}

func TestSeqCountsWithoutGapsAndStampsTheNode(t *testing.T) {
	srv := startNode(t, server.Config{Node: "n7", Tick: 10 * time.Millisecond})
	a := dial(t, srv, "ev", "a")
	var seqs []uint64
	for i := range 10 {
		a.cursor(float64(i), 0)
		bt := a.next()
		if bt.N != "n7" || bt.TS == 0 {
			t.Fatalf("batch n=%q ts=%d", bt.N, bt.TS)
		}
		seqs = append(seqs, bt.Seq)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v, want 1..10", seqs)
		}
	}
}

func TestQuietEventSendsNextUpdateAtOnce(t *testing.T) {
	const tick = time.Second
	srv := startNode(t, server.Config{Tick: tick})
	a := dial(t, srv, "ev", "a")
	a.next() // a's own join, sent at once
	// After a whole tick without a batch, the next update must not wait
	// for a tick boundary.
	time.Sleep(tick + tick/5)
	sent := time.Now()
	a.cursor(1, 1)
	bt := a.next()
	if _, _, ok := curOf(bt, "a"); !ok {
		t.Fatalf("batch without the cursor: %+v", bt)
	}
	if waited := time.Since(sent); waited > tick/2 {
		t.Fatalf("update after a quiet tick waited %v; leading edge should send it at once", waited)
	}
}

func TestEmptyTickSendsNothing(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 20 * time.Millisecond})
	a := dial(t, srv, "ev", "a")
	a.next() // join
	a.quiet(200 * time.Millisecond)
}

func TestManyEventsManyMembers(t *testing.T) {
	srv := startNode(t, server.Config{Tick: 20 * time.Millisecond})
	var clients []*client
	for e := range 10 {
		for u := range 5 {
			clients = append(clients, dial(t, srv, fmt.Sprintf("e%d", e), fmt.Sprintf("u%d", u)))
		}
	}
	for i, c := range clients {
		if i%5 == 0 {
			c.action(i)
		}
	}
	for i, c := range clients {
		want := (i / 5) * 5
		c.until(func(bt batch) bool {
			for _, a := range bt.Act {
				if int(num(a[1])) != want {
					t.Fatalf("client %d in event %d got action %v", i, i/5, a[1])
				}
			}
			return len(bt.Act) > 0
		})
	}
}
