package codec

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func unmarshalMap(t *testing.T, frame []byte) map[string]any {
	t.Helper()
	if err := Validate(frame, MaxDepth+2); err != nil {
		t.Fatalf("frame % x: %v", frame, err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(frame, &m); err != nil {
		t.Fatalf("unmarshal % x: %v", frame, err)
	}
	return m
}

// asInt converts the integer types msgpack decodes into.
func asInt(t *testing.T, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case int8, int16, int32, int64:
		return reflect.ValueOf(n).Int()
	case uint8, uint16, uint32, uint64:
		return int64(reflect.ValueOf(n).Uint())
	}
	t.Fatalf("%v (%T) is not an integer", v, v)
	return 0
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestAppendBatchRoundTrip(t *testing.T) {
	d1 := mp(t, map[string]any{"op": "draw", "pts": []any{1, 2.5, -3}})
	d2 := x(t, "d6 ff 00000001") // an ext (timestamp) the relay must not touch
	b := &Batch{
		Node: "node-a", Seq: 1 << 40, TS: 1_700_000_000_123,
		Cursors: []Cursor{{"alice", 1, 2}, {"bob", -0.5, math.MaxFloat64}, {"carol", 3, 1e-300}},
		Actions: []Action{{"alice", d1}, {"bob", d2}, {"alice", []byte{0x01}}},
		Joins:   users("j", 17), // array16 rather than fixarray
		Leaves:  []string{"dave"},
	}
	var e Encoder
	prefix := []byte("keep")
	frame := e.AppendBatch(append([]byte(nil), prefix...), b)
	if !bytes.HasPrefix(frame, prefix) {
		t.Fatalf("AppendBatch lost dst's contents")
	}
	frame = frame[len(prefix):]
	m := unmarshalMap(t, frame)

	if len(m) != 8 || m["t"] != "batch" || m["n"] != "node-a" ||
		asInt(t, m["seq"]) != 1<<40 || asInt(t, m["ts"]) != b.TS {
		t.Fatalf("header fields: %v", m)
	}
	cur := m["cur"].([]any)
	if len(cur) != len(b.Cursors) {
		t.Fatalf("cur: %v", cur)
	}
	for i, c := range b.Cursors {
		got := cur[i].([]any)
		if len(got) != 3 || got[0] != c.User || got[1] != c.X || got[2] != c.Y {
			t.Errorf("cur[%d] = %#v, want [%q %v %v] with float64s", i, got, c.User, c.X, c.Y)
		}
	}
	act := m["act"].([]any)
	if len(act) != len(b.Actions) {
		t.Fatalf("act: %v", act)
	}
	for i, a := range b.Actions {
		got := act[i].([]any)
		var want any
		if err := msgpack.Unmarshal(a.Data, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != a.User || !reflect.DeepEqual(got[1], want) {
			t.Errorf("act[%d] = %#v, want [%q %#v]", i, got, a.User, want)
		}
		// Exact bytes: user string, then the raw value, in order.
		entry := cat([]byte{0x92}, mp(t, a.User), a.Data)
		if !bytes.Contains(frame, entry) {
			t.Errorf("act[%d]: frame lacks the exact bytes % x", i, entry)
		}
	}
	if !reflect.DeepEqual(m["join"], toAny(b.Joins)) || !reflect.DeepEqual(m["leave"], toAny(b.Leaves)) {
		t.Errorf("join/leave = %v / %v", m["join"], m["leave"])
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func TestAppendBatchOmitsEmptyLists(t *testing.T) {
	tests := []struct {
		name string
		b    Batch
		keys []string
	}{
		{"nothing", Batch{Node: "n", Seq: 1}, nil},
		{"cursors", Batch{Cursors: []Cursor{{"u", 1, 2}}}, []string{"cur"}},
		{"actions", Batch{Actions: []Action{{"u", []byte{0xc0}}}}, []string{"act"}},
		{"joins", Batch{Joins: []string{"u"}}, []string{"join"}},
		{"leaves", Batch{Leaves: []string{"u"}}, []string{"leave"}},
		{"empty non-nil", Batch{Cursors: []Cursor{}, Joins: []string{}, Leaves: []string{"u"}}, []string{"leave"}},
	}
	var e Encoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := unmarshalMap(t, e.AppendBatch(nil, &tt.b))
			want := map[string]bool{"t": true, "n": true, "seq": true, "ts": true}
			for _, k := range tt.keys {
				want[k] = true
			}
			if len(m) != len(want) {
				t.Fatalf("keys %v, want %v", m, want)
			}
			for k := range m {
				if !want[k] {
					t.Errorf("unexpected key %q", k)
				}
			}
		})
	}
}

func TestAppendBatchEmptyActionIsNil(t *testing.T) {
	var e Encoder
	m := unmarshalMap(t, e.AppendBatch(nil, &Batch{Actions: []Action{{User: "u"}}}))
	if got := m["act"].([]any)[0].([]any); len(got) != 2 || got[1] != nil {
		t.Fatalf("act = %#v, want [u nil]", got)
	}
}

func TestAppendBatchLarge(t *testing.T) {
	var e Encoder
	b := &Batch{Node: "n", Seq: 2, Cursors: make([]Cursor, 70000)} // array32
	for i := range b.Cursors {
		b.Cursors[i] = Cursor{User: "u", X: float64(i), Y: -float64(i)}
	}
	m := unmarshalMap(t, e.AppendBatch(nil, b))
	cur := m["cur"].([]any)
	if len(cur) != len(b.Cursors) || cur[69999].([]any)[1] != 69999.0 {
		t.Fatalf("cur has %d entries", len(cur))
	}
}

func TestAppendWelcome(t *testing.T) {
	var e Encoder
	for _, members := range [][]string{{"me"}, users("m", 40), nil} {
		m := unmarshalMap(t, e.AppendWelcome(nil, "me", "ev:1", "node-b", members))
		if len(m) != 5 || m["t"] != "welcome" || m["me"] != "me" || m["event"] != "ev:1" || m["node"] != "node-b" {
			t.Fatalf("welcome = %v", m)
		}
		if got := m["members"].([]any); !reflect.DeepEqual(got, toAny(members)) {
			t.Fatalf("members = %v, want %v", got, members)
		}
	}
}

func TestAppendCursorDecodes(t *testing.T) {
	for _, c := range [][2]float64{{0, 0}, {1.5, -2}, {math.Copysign(0, -1), math.MaxFloat64}, {1e-310, 42}} {
		frame := AppendCursor([]byte("x"), c[0], c[1])[1:]
		var m Message
		if err := Decode(frame, &m); err != nil {
			t.Fatalf("Decode(AppendCursor(%v)): %v", c, err)
		}
		if m.Kind != KindCursor || !sameFloat(m.X, c[0]) || !sameFloat(m.Y, c[1]) {
			t.Fatalf("Decode(AppendCursor(%v)) = %+v", c, m)
		}
	}
}

func TestAppendActionDecodes(t *testing.T) {
	for _, d := range [][]byte{{0x01}, mp(t, []any{"a", map[string]any{"b": 1}}), nestArrays(MaxDepth)} {
		frame := AppendAction(nil, d)
		var m Message
		if err := Decode(frame, &m); err != nil {
			t.Fatalf("Decode(AppendAction(% x)): %v", d, err)
		}
		if m.Kind != KindAction || !bytes.Equal(m.Data, d) {
			t.Fatalf("Decode(AppendAction(% x)) = %+v", d, m)
		}
	}
	var m Message
	if err := Decode(AppendAction(nil, nil), &m); err != nil || !bytes.Equal(m.Data, []byte{0xc0}) {
		t.Fatalf("AppendAction(nil) decodes to %+v, %v; want d = nil", m, err)
	}
}

func TestEncodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	b := benchBatch(50, 5)
	var e Encoder
	buf := e.AppendBatch(nil, b)
	if n := testing.AllocsPerRun(100, func() { buf = e.AppendBatch(buf[:0], b) }); n != 0 {
		t.Errorf("AppendBatch: %v allocations, want 0", n)
	}
	members := users("m", 20)
	if n := testing.AllocsPerRun(100, func() { buf = e.AppendWelcome(buf[:0], "me", "ev", "node", members) }); n != 0 {
		t.Errorf("AppendWelcome: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendCursor(buf[:0], 1, 2) }); n != 0 {
		t.Errorf("AppendCursor: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendAction(buf[:0], []byte{1}) }); n != 0 {
		t.Errorf("AppendAction: %v allocations, want 0", n)
	}
}

// benchBatch is a batch with the given numbers of cursors and small actions.
func benchBatch(cursors, actions int) *Batch {
	b := &Batch{Node: "node-1", Seq: 12345, TS: 1_700_000_000_000, Joins: []string{"new-user"}}
	for i := range cursors {
		b.Cursors = append(b.Cursors, Cursor{User: fmt.Sprintf("user-%04d", i), X: float64(i) * 1.25, Y: 480.5})
	}
	d, _ := msgpack.Marshal(map[string]any{"op": "stroke", "pts": []float64{1, 2, 3, 4}})
	for i := range actions {
		b.Actions = append(b.Actions, Action{User: fmt.Sprintf("user-%04d", i), Data: d})
	}
	return b
}
