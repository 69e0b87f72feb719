package loadgen

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/relay-dev/relay/codec"
)

func seedMessages(f *testing.F) {
	var enc codec.Encoder
	f.Add(enc.AppendWelcome(nil, "me", "ev", "n1", []string{"me", "you"}))
	f.Add(enc.AppendBatch(nil, &codec.Batch{Node: "n", Seq: 3, TS: 17,
		Cursors: []codec.Cursor{{User: "a", X: 1, Y: 2}},
		Actions: []codec.Action{{User: "b", Data: stamp(5, 1, 1)}, {User: "c", Data: []byte{0x91, 0x80}}},
		Joins:   []string{"d"}, Leaves: []string{"e"}}))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa3, 'c', 'u', 'r', 0x91, 0x93, 0xa1, 'u', 0xca, 0, 0, 0, 0, 0x01})
}

// FuzzWalk: the walker never panics, agrees with codec.Validate on what is
// one well-formed value, and its entry readers stay within the frame.
func FuzzWalk(f *testing.F) {
	seedMessages(f)
	sh := newShard(new(tally))
	sh.begin(1)
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := skipValue(b, 0, maxDepth)
		valid := err == nil && end == len(b)
		if want := codec.Validate(b, maxDepth) == nil; valid != want {
			t.Fatalf("skipValue says one value %v, codec.Validate %v, for % x", valid, want, b)
		}
		var m message
		if walkMessage(b, &m, nil) != nil {
			return
		}
		if !valid {
			t.Fatalf("walked a frame codec refuses: % x", b)
		}
		var spans collector
		cur, err := openEntries(m.cur)
		for err == nil && cur.more() {
			var user []byte
			var x, y float64
			if user, x, y, err = cur.cursor(); err == nil {
				spans.visitCursor(nil, user, x, y)
			}
		}
		bad := err != nil
		act, err := openEntries(m.act)
		for err == nil && act.more() {
			var user, d []byte
			if user, d, err = act.action(); err == nil {
				readStamp(d)
				spans.visitAction(nil, user, d)
			}
		}
		bad = bad || err != nil
		// Visiting finds the same entries, in one pass or two.
		var visited collector
		var mv message
		if err := walkMessage(b, &mv, &visited); err != nil {
			t.Fatalf("visiting walk failed where the plain one did not: %v", err)
		}
		if m.kind == kindBatch && (mv.bad != bad || !reflect.DeepEqual(spans, visited)) {
			t.Fatalf("visited %+v (bad %v), spans %+v (bad %v)", visited, mv.bad, spans, bad)
		}
		// The whole receive path, on a welcomed connection in a phase.
		sh.mu.Lock()
		defer sh.mu.Unlock()
		c := welcomed(t, sh)
		sh.receive(c, binFrame(b), 1)
	})
}

// FuzzFrames: any byte stream, however it is split into reads, yields the
// same frames (or the same error) and never a panic.
func FuzzFrames(f *testing.F) {
	all, _ := stream(false)
	f.Add(all, 7)
	f.Add([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa}, 3)
	f.Add([]byte{0x89, 0x00, 0x88, 0x02, 0x03, 0xe8}, 1)
	sh := newShard(new(tally))
	sh.begin(1)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var whole recorder
		var r1 frameReader
		err1 := r1.feed(bytes.Clone(b), &whole)
		if split < 0 {
			split = -split
		}
		if len(b) > 0 {
			split %= len(b) + 1
		} else {
			split = 0
		}
		var parts recorder
		var r2 frameReader
		in := bytes.Clone(b)
		err2 := r2.feed(in[:split], &parts)
		if err2 == nil {
			err2 = r2.feed(in[split:], &parts)
		}
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(whole.frames, parts.frames) {
			t.Fatalf("whole: %d frames, err %v; split at %d: %d frames, err %v", len(whole.frames), err1, split, len(parts.frames), err2)
		}
		// And through a connection, whose handling of each frame must not
		// panic either.
		sh.mu.Lock()
		defer sh.mu.Unlock()
		c := welcomed(t, sh)
		sh.receive(c, bytes.Clone(b[:split]), 2)
		sh.receive(c, bytes.Clone(b[split:]), 3)
	})
}

// welcomed is a fresh live connection on sh that has had its welcome. Call
// with sh.mu held.
func welcomed(t *testing.T, sh *shard) *conn {
	c := &conn{sock: new(fakeSocket), sh: sh, user: "me", live: true}
	var enc codec.Encoder
	sh.receive(c, binFrame(enc.AppendWelcome(nil, "me", "ev", "n1", nil)), 1)
	if !c.welcomed {
		t.Fatal("no welcome")
	}
	return c
}
