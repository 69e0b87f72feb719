package loadgen

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/codec"
)

type cursorEntry struct {
	user string
	x, y float64
}

type actionEntry struct {
	user string
	d    []byte
}

// walked is everything the walker finds in one message.
type walked struct {
	m       message
	cursors []cursorEntry
	actions []actionEntry
}

func walkAll(t *testing.T, b []byte) walked {
	t.Helper()
	var w walked
	if err := walkMessage(b, &w.m, nil); err != nil {
		t.Fatalf("walk % x: %v", b, err)
	}
	cur, err := openEntries(w.m.cur)
	for err == nil && cur.more() {
		var e cursorEntry
		var user []byte
		user, e.x, e.y, err = cur.cursor()
		e.user = string(user)
		if err == nil {
			w.cursors = append(w.cursors, e)
		}
	}
	if err != nil {
		t.Fatalf("cursors: %v", err)
	}
	act, err := openEntries(w.m.act)
	for err == nil && act.more() {
		var user, d []byte
		user, d, err = act.action()
		if err == nil {
			w.actions = append(w.actions, actionEntry{string(user), d})
		}
	}
	if err != nil {
		t.Fatalf("actions: %v", err)
	}
	// The visiting walk finds the same entries.
	var m message
	var col collector
	if err := walkMessage(b, &m, &col); err != nil {
		t.Fatalf("visiting walk: %v", err)
	}
	if w.m.kind == kindBatch && (!reflect.DeepEqual(col.cursors, w.cursors) || !reflect.DeepEqual(col.actions, w.actions)) {
		t.Fatalf("visited %+v %+v, spans gave %+v %+v", col.cursors, col.actions, w.cursors, w.actions)
	}
	return w
}

// collector is an entryVisitor that keeps what it is given.
type collector struct {
	cursors []cursorEntry
	actions []actionEntry
}

func (c *collector) visitCursor(_, user []byte, x, y float64) {
	c.cursors = append(c.cursors, cursorEntry{string(user), x, y})
}

func (c *collector) visitAction(_, user, d []byte) {
	c.actions = append(c.actions, actionEntry{string(user), d})
}

func TestWalkBatch(t *testing.T) {
	var enc codec.Encoder
	nested := mp(t, map[string]any{"k": []any{1, []any{2, map[string]any{"z": nil}}, "s"}, "f": 1.5})
	frame := enc.AppendBatch(nil, &codec.Batch{
		Node: "node-7", Seq: 1 << 40, TS: 1_796_300_000_123,
		Cursors: []codec.Cursor{{User: "alice", X: 1.25, Y: -3}, {User: "bob", X: math.MaxFloat64, Y: 0}},
		Actions: []codec.Action{{User: "alice", Data: stamp(42, 3, 7)}, {User: "carol", Data: nested}},
		Joins:   []string{"dave", "erin"},
		Leaves:  []string{"frank"},
	})
	w := walkAll(t, frame)
	if w.m.kind != kindBatch || string(w.m.node) != "node-7" || w.m.seq != 1<<40 || w.m.ts != 1_796_300_000_123 ||
		w.m.joins != 2 || w.m.leaves != 1 {
		t.Fatalf("fields: %+v", w.m)
	}
	wantCur := []cursorEntry{{"alice", 1.25, -3}, {"bob", math.MaxFloat64, 0}}
	if len(w.cursors) != 2 || w.cursors[0] != wantCur[0] || w.cursors[1] != wantCur[1] {
		t.Fatalf("cursors %+v", w.cursors)
	}
	if len(w.actions) != 2 || !bytes.Equal(w.actions[1].d, nested) {
		t.Fatalf("actions %+v", w.actions)
	}
	ns, seq, ok := readStamp(w.actions[0].d)
	if !ok || ns != 42 || seq != 3<<32|7 {
		t.Fatalf("stamp: %d %d %v", ns, seq, ok)
	}
	if _, _, ok := readStamp(w.actions[1].d); ok {
		t.Fatal("a foreign action read as a stamp")
	}
}

func TestWalkWelcome(t *testing.T) {
	var enc codec.Encoder
	w := walkAll(t, enc.AppendWelcome(nil, "me", "ev", "n-1", []string{"me", "you"}))
	if w.m.kind != kindWelcome || string(w.m.node) != "n-1" {
		t.Fatalf("%+v", w.m)
	}
}

// kv encodes a map with keys in the given order (the library would sort or
// shuffle a Go map).
func kv(t *testing.T, pairs ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := e.EncodeMapLen(len(pairs) / 2); err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if raw, ok := p.(msgpack.RawMessage); ok {
			buf.Write(raw)
			continue
		}
		if err := e.Encode(p); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestWalkKeys(t *testing.T) {
	ext := msgpack.RawMessage{0xc7, 3, 5, 'a', 'b', 'c'} // ext8
	fixext := msgpack.RawMessage{0xd8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	bin := msgpack.RawMessage{0xc5, 0, 3, 1, 2, 3}                 // bin16
	str32 := msgpack.RawMessage{0xdb, 0, 0, 0, 2, 'h', 'i'}        // str32
	map32 := msgpack.RawMessage{0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc0} // {"k":nil}
	arr16 := msgpack.RawMessage{0xdc, 0, 2, 0xca, 0, 0, 0, 0, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1}
	cases := []struct {
		name  string
		frame []byte
		check func(w walked) bool
	}{
		{"t batch", kv(t, "t", "batch"), func(w walked) bool { return w.m.kind == kindBatch }},
		{"t welcome", kv(t, "t", "welcome"), func(w walked) bool { return w.m.kind == kindWelcome }},
		{"t other", kv(t, "t", "nope"), func(w walked) bool { return w.m.kind == 0 }},
		{"t not a string", kv(t, "t", 5), func(w walked) bool { return w.m.kind == 0 }},
		{"n", kv(t, "n", "a"), func(w walked) bool { return string(w.m.node) == "a" }},
		{"node", kv(t, "node", "b"), func(w walked) bool { return string(w.m.node) == "b" }},
		{"seq uint8", kv(t, "seq", uint8(200)), func(w walked) bool { return w.m.seq == 200 }},
		{"seq uint64", kv(t, "seq", uint64(math.MaxUint64)), func(w walked) bool { return w.m.seq == math.MaxUint64 }},
		{"ts int64", kv(t, "ts", int64(1_796_300_000_000)), func(w walked) bool { return w.m.ts == 1_796_300_000_000 }},
		{"ts negative", kv(t, "ts", int64(-5)), func(w walked) bool { return w.m.ts == -5 }},
		{"cur int coords", kv(t, "cur", []any{[]any{"u", 3, -4}}), func(w walked) bool {
			return len(w.cursors) == 1 && w.cursors[0] == cursorEntry{"u", 3, -4}
		}},
		{"cur float32 coords", kv(t, "cur", []any{[]any{"u", float32(0.5), float32(2)}}), func(w walked) bool {
			return len(w.cursors) == 1 && w.cursors[0] == cursorEntry{"u", 0.5, 2}
		}},
		{"cur extra element", kv(t, "cur", []any{[]any{"u", 1.0, 2.0, map[string]any{"x": []int{1}}}, []any{"v", 3.0, 4.0}}), func(w walked) bool {
			return len(w.cursors) == 2 && w.cursors[1] == cursorEntry{"v", 3, 4}
		}},
		{"act nested d", kv(t, "act", []any{[]any{"u", map[string]any{"a": []any{[]any{1}}}}, []any{"v", nil}}), func(w walked) bool {
			return len(w.actions) == 2 && w.actions[1].user == "v" && bytes.Equal(w.actions[1].d, []byte{0xc0})
		}},
		{"join leave", kv(t, "join", []string{"a", "b", "c"}, "leave", []string{}), func(w walked) bool {
			return w.m.joins == 3 && w.m.leaves == 0
		}},
		{"unknown keys of every type", kv(t,
			"zz", ext, "t", "batch", "fx", fixext, "bin", bin, "s32", str32, "m32", map32, "a16", arr16,
			"neg", -100, "u16", uint16(60000), "i32", int32(-70000), "f64", 2.5, "b", true, "nil", nil,
			"n", "node-x", "deep", []any{[]any{[]any{map[string]any{"q": []any{1, 2}}}}}),
			func(w walked) bool { return w.m.kind == kindBatch && string(w.m.node) == "node-x" }},
		{"key not a string", append([]byte{0x82, 0x01, 0xa1, 'x'}, kv(t, "n", "y")[1:]...), func(w walked) bool {
			return string(w.m.node) == "y"
		}},
		{"key given twice: last wins", kv(t, "n", "first", "n", "second"), func(w walked) bool { return string(w.m.node) == "second" }},
		{"entries before t and n", kv(t, "cur", []any{[]any{"u", 1.0, 2.0}}, "act", []any{[]any{"v", 7}}, "t", "batch", "n", "x"), func(w walked) bool {
			return len(w.cursors) == 1 && len(w.actions) == 1 && string(w.m.node) == "x"
		}},
		{"empty map", []byte{0x80}, func(w walked) bool { return w.m.kind == 0 && w.m.cur == nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := codec.Validate(tc.frame, codec.MaxDepth); err != nil {
				t.Fatalf("test frame is not valid msgpack: %v", err)
			}
			if w := walkAll(t, tc.frame); !tc.check(w) {
				t.Fatalf("walked %+v", w)
			}
		})
	}
}

func TestWalkRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":             {},
		"not a map":         {0x91, 0x01},
		"trailing byte":     {0x80, 0x00},
		"truncated key":     {0x81, 0xa3, 'a'},
		"missing value":     {0x81, 0xa1, 't'},
		"huge map count":    {0xdf, 0xff, 0xff, 0xff, 0xff},
		"huge string":       {0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xff},
		"never-used byte":   {0x81, 0xa1, 'x', 0xc1},
		"truncated float64": {0x81, 0xa1, 'x', 0xcb, 0, 0},
		"too deep":          append(append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, maxDepth+1)...), 0xc0),
	} {
		var m message
		if err := walkMessage(b, &m, nil); err == nil {
			t.Errorf("%s: walked without error", name)
		}
	}
}

func TestEntriesRefuseBadShapes(t *testing.T) {
	for name, list := range map[string][]byte{
		"cursor too short":  mp(t, []any{[]any{"u", 1.0}}),
		"cursor user int":   mp(t, []any{[]any{1, 1.0, 2.0}}),
		"cursor x string":   mp(t, []any{[]any{"u", "x", 2.0}}),
		"list not an array": mp(t, "x"),
	} {
		e, err := openEntries(list)
		if err == nil {
			_, _, _, err = e.cursor()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	e, err := openEntries(mp(t, []any{[]any{"u"}}))
	if err == nil {
		_, _, err = e.action()
	}
	if err == nil {
		t.Error("action with no value: no error")
	}
}
