package codec

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestDecodeCursorNumbers(t *testing.T) {
	tests := []struct {
		name string
		num  string // hex of one MessagePack number
		want float64
	}{
		{"positive fixint", "05", 5},
		{"positive fixint max", "7f", 127},
		{"negative fixint", "ff", -1},
		{"negative fixint min", "e0", -32},
		{"uint8", "cc ff", 255},
		{"uint16", "cd ffff", 65535},
		{"uint32", "ce ffffffff", 4294967295},
		{"uint64", "cf 0000000100000000", 1 << 32},
		{"uint64 max", "cf ffffffffffffffff", math.MaxUint64},
		{"uint64 beyond 2^53", "cf 0020000000000001", 1 << 53}, // rounds as float64() does
		{"int8", "d0 80", -128},
		{"int16", "d1 8000", -32768},
		{"int32", "d2 80000000", math.MinInt32},
		{"int64", "d3 8000000000000000", math.MinInt64},
		{"float32", "ca 3fc00000", 1.5},
		{"float32 max", "ca 7f7fffff", math.MaxFloat32},
		{"float64", "cb 400921fb54442d18", math.Pi},
		{"float64 negative zero", "cb 8000000000000000", math.Copysign(0, -1)},
		{"float64 max", "cb 7fefffffffffffff", math.MaxFloat64},
		{"float64 smallest subnormal", "cb 0000000000000001", math.SmallestNonzeroFloat64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, zero := x(t, tt.num), []byte{0}
			var m Message
			err := Decode(cur(n, zero), &m)
			if err != nil || m.Kind != KindCursor || !sameFloat(m.X, tt.want) || m.Y != 0 {
				t.Errorf("as x: got %+v, %v; want x = %v", m, err, tt.want)
			}
			err = Decode(cur(zero, n), &m)
			if err != nil || m.Kind != KindCursor || m.X != 0 || !sameFloat(m.Y, tt.want) {
				t.Errorf("as y: got %+v, %v; want y = %v", m, err, tt.want)
			}
		})
	}
}

// sameFloat tells -0 from 0, which == does not.
func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

func TestDecodeValid(t *testing.T) {
	str8 := func(s string) []byte { return cat([]byte{0xd9, byte(len(s))}, []byte(s)) }
	str16 := func(s string) []byte { return cat([]byte{0xda, 0, byte(len(s))}, []byte(s)) }
	str32 := func(s string) []byte { return cat([]byte{0xdb, 0, 0, 0, byte(len(s))}, []byte(s)) }
	tests := []struct {
		name string
		in   []byte
		want Message
	}{
		{"cursor marshalled", obj(t, "t", "cur", "x", 10, "y", -2.5), Message{Kind: KindCursor, X: 10, Y: -2.5}},
		{"cursor keys in any order", obj(t, "y", 2, "x", 1, "t", "cur"), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"cursor ignores d", obj(t, "t", "cur", "d", "hi", "x", 1, "y", 2), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"cursor ignores unknown keys", obj(t, "v", 2, "t", "cur", "x", 1, "y", 2, "z", []any{1, map[string]any{"a": nil}}), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"str8 keys", obj(t, str8("t"), "cur", str8("x"), 1, str8("y"), 2), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"str16 keys", obj(t, str16("t"), "cur", str16("x"), 1, str16("y"), 2), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"str32 keys", obj(t, str32("t"), "cur", str32("x"), 1, str32("y"), 2), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"str8 t value", obj(t, "t", str8("cur"), "x", 1, "y", 2), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"str32 t value", obj(t, "t", str32("act"), "d", 1), Message{Kind: KindAction, Data: []byte{1}}},
		{"map16 message", cat(x(t, "de 0003"), obj(t, "t", "cur", "x", 1, "y", 2)[1:]), Message{Kind: KindCursor, X: 1, Y: 2}},
		{"map32 message", cat(x(t, "df 00000002"), act(x(t, "c0"))[1:]), Message{Kind: KindAction, Data: []byte{0xc0}}},
		{"action nil", act(x(t, "c0")), Message{Kind: KindAction, Data: []byte{0xc0}}},
		{"action true", act(x(t, "c3")), Message{Kind: KindAction, Data: []byte{0xc3}}},
		{"action float64", act(x(t, "cb 7ff8000000000001")), Message{Kind: KindAction, Data: x(t, "cb 7ff8000000000001")}},
		{"action str", act(mp(t, "hello")), Message{Kind: KindAction, Data: mp(t, "hello")}},
		{"action empty str8", act(x(t, "d9 00")), Message{Kind: KindAction, Data: x(t, "d9 00")}},
		{"action bin8", act(x(t, "c4 03 010203")), Message{Kind: KindAction, Data: x(t, "c4 03 010203")}},
		{"action bin16", act(x(t, "c5 0001 ff")), Message{Kind: KindAction, Data: x(t, "c5 0001 ff")}},
		{"action ext8", act(x(t, "c7 02 05 aabb")), Message{Kind: KindAction, Data: x(t, "c7 02 05 aabb")}},
		{"action ext16 empty", act(x(t, "c8 0000 05")), Message{Kind: KindAction, Data: x(t, "c8 0000 05")}},
		{"action ext32", act(x(t, "c9 00000001 05 aa")), Message{Kind: KindAction, Data: x(t, "c9 00000001 05 aa")}},
		{"action fixext1", act(x(t, "d4 01 aa")), Message{Kind: KindAction, Data: x(t, "d4 01 aa")}},
		{"action fixext16", act(x(t, "d8 01 00112233445566778899aabbccddeeff")), Message{Kind: KindAction, Data: x(t, "d8 01 00112233445566778899aabbccddeeff")}},
		{"action timestamp", act(x(t, "d6 ff 00000001")), Message{Kind: KindAction, Data: x(t, "d6 ff 00000001")}},
		{"action array", act(mp(t, []any{1, "a", nil})), Message{Kind: KindAction, Data: mp(t, []any{1, "a", nil})}},
		{"action map with non-string keys", act(x(t, "82 01 02 91c0 c3")), Message{Kind: KindAction, Data: x(t, "82 01 02 91c0 c3")}},
		{"action array depth 32", act(nestArrays(32)), Message{Kind: KindAction, Data: nestArrays(32)}},
		{"action map depth 32", act(nestMaps(32)), Message{Kind: KindAction, Data: nestMaps(32)}},
		{"action ignores x and y", obj(t, "x", "not a number", "t", "act", "y", nil, "d", 7), Message{Kind: KindAction, Data: []byte{7}}},
		{"action then unknown key", obj(t, "t", "act", "d", []int{1, 2}, "zz", 3), Message{Kind: KindAction, Data: mp(t, []int{1, 2})}},
		{"max keys", manyKeys(t, MaxKeys), Message{Kind: KindAction, Data: []byte{1}}},
		{"more than fewKeys keys", manyKeys(t, fewKeys+1), Message{Kind: KindAction, Data: []byte{1}}},
		{"keys alike but for a NUL", obj(t, "t", "act", "d", 1, "a", 1, "a\x00", 2, "", 3, "\x00", 4), Message{Kind: KindAction, Data: []byte{1}}},
		{"long keys alike but for the end", obj(t, "t", "act", "d", 1, strings.Repeat("k", 40)+"1", 1, strings.Repeat("k", 40)+"2", 2), Message{Kind: KindAction, Data: []byte{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			if err := Decode(tt.in, &m); err != nil {
				t.Fatalf("Decode(% x): %v", tt.in, err)
			}
			if m.Kind != tt.want.Kind || m.X != tt.want.X || m.Y != tt.want.Y || !bytes.Equal(m.Data, tt.want.Data) {
				t.Fatalf("Decode(% x) = %+v, want %+v", tt.in, m, tt.want)
			}
			if m.Kind == KindAction {
				checkAliases(t, tt.in, m.Data)
			}
		})
	}
}

// manyKeys is an action with n keys in all: "t", "d" and n-2 unknown ones.
func manyKeys(t testing.TB, n int) []byte { return obj(t, manyKeyPairs(n)...) }

// manyKeyPairs is the keys and values of manyKeys(n), then more.
func manyKeyPairs(n int, more ...any) []any {
	kv := []any{"t", "act", "d", 1}
	for i := range n - 2 {
		kv = append(kv, "k"+strconv.Itoa(i), i)
	}
	return append(kv, more...)
}

// checkAliases fails unless data is a sub-slice of frame that cannot be
// appended into it.
func checkAliases(t *testing.T, frame, data []byte) {
	t.Helper()
	start := uintptr(unsafe.Pointer(unsafe.SliceData(frame)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if p < start || p+uintptr(len(data)) > start+uintptr(len(frame)) {
		t.Fatalf("Data does not alias the frame")
	}
	if cap(data) != len(data) {
		t.Fatalf("cap(Data) = %d, want %d (capped)", cap(data), len(data))
	}
}

func TestDecodeInvalid(t *testing.T) {
	nan32, inf32, ninf32 := x(t, "ca 7fc00000"), x(t, "ca 7f800000"), x(t, "ca ff800000")
	nan64, inf64, ninf64 := x(t, "cb 7ff8000000000000"), x(t, "cb 7ff0000000000000"), x(t, "cb fff0000000000000")
	one := []byte{1}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errEmpty},
		{"nil", x(t, "c0"), errNotMap},
		{"array", mp(t, []any{"t", "cur"}), errNotMap},
		{"string", mp(t, "cur"), errNotMap},
		{"never used byte", x(t, "c1"), errNotMap},
		{"two maps", cat(act(one), act(one)), errTrailing},
		{"trailing byte", cat(act(one), one), errTrailing},
		{"truncated map16 header", x(t, "de 00"), errTruncated},
		{"map32 claims 2^32-1 pairs", x(t, "df ffffffff 00"), errBeyond},
		{"map16 claims more pairs than bytes", x(t, "de 0010 a174 a3636172"), errBeyond},
		{"too many keys", manyKeys(t, MaxKeys+1), errTooManyKeys},
		{"int key", obj(t, 1, 2, "t", "act", "d", 1), errKeyNotString},
		{"bin key", obj(t, []byte{0xc4, 1, 't'}, "act", "d", 1), errKeyNotString},
		{"nil key", obj(t, nil, 1, "t", "act", "d", 1), errKeyNotString},
		{"str32 key claims 2^32-1 bytes", x(t, "81 db ffffffff 00"), errBeyond},
		{"str8 key beyond frame", x(t, "81 d9 05 7478 00"), errBeyond},
		{"t given twice", obj(t, "t", "act", "t", "act", "d", 1), errDupT},
		{"t given twice, str8 and fixstr", obj(t, "t", "act", []byte{0xd9, 1, 't'}, "act", "d", 1), errDupT},
		{"x given twice", obj(t, "t", "cur", "x", 1, "x", 1, "y", 2), errDupX},
		{"y given twice", obj(t, "t", "cur", "y", 1, "x", 1, "y", 2), errDupY},
		{"d given twice", obj(t, "t", "act", "d", 1, "d", 1), errDupD},
		{"unknown key given twice", obj(t, "t", "act", "d", 1, "zz", 1, "zz", 2), errDupKey},
		{"long key given twice", obj(t, "t", "act", "d", 1, strings.Repeat("k", 40), 1, strings.Repeat("k", 40), 2), errDupKey},
		{"key given twice among many", obj(t, "t", "act", "d", 1, "k0", 0, "k1", 1, "k2", 2, "k3", 3, "k4", 4, "k5", 5, "k6", 6, "k7", 7, "k3", 8), errDupKey},
		{"d given twice as key 64", obj(t, manyKeyPairs(MaxKeys-1, "d", 2)...), errDupD},
		{"empty key given twice", obj(t, "", 1, "t", "act", "d", 1, "", 2), errDupKey},
		{"t missing", obj(t, "x", 1, "y", 2), errTMissing},
		{"empty map", x(t, "80"), errTMissing},
		{"t int", obj(t, "t", 1, "x", 1, "y", 2), errTNotString},
		{"t bin", obj(t, "t", []byte{0xc4, 3, 'c', 'u', 'r'}, "x", 1, "y", 2), errTNotString},
		{"t nil", obj(t, "t", nil, "d", 1), errTNotString},
		{"t unknown", obj(t, "t", "batch", "d", 1), errUnknownT},
		{"t empty", obj(t, "t", "", "d", 1), errUnknownT},
		{"t upper case", obj(t, "t", "CUR", "x", 1, "y", 2), errUnknownT},
		{"x missing", obj(t, "t", "cur", "y", 2), errXYMissing},
		{"y missing", obj(t, "t", "cur", "x", 2), errXYMissing},
		{"x and y missing", obj(t, "t", "cur", "d", 2), errXYMissing},
		{"x string", cur(mp(t, "1"), one), errNotNumber},
		{"y nil", cur(one, x(t, "c0")), errNotNumber},
		{"x bool", cur(x(t, "c3"), one), errNotNumber},
		{"x array", cur(x(t, "91 01"), one), errNotNumber},
		{"x ext", cur(x(t, "d4 01 01"), one), errNotNumber},
		{"x float32 NaN", cur(nan32, one), errNotFinite},
		{"y float32 +Inf", cur(one, inf32), errNotFinite},
		{"x float32 -Inf", cur(ninf32, one), errNotFinite},
		{"x float64 NaN", cur(nan64, one), errNotFinite},
		{"y float64 +Inf", cur(one, inf64), errNotFinite},
		{"y float64 -Inf", cur(one, ninf64), errNotFinite},
		{"x float64 cut short", x(t, "83 a174 a3637572 a178 cb 0000"), errTruncated},
		{"d missing", obj(t, "t", "act", "x", 1), errDMissing},
		{"d array32 claims 2^32-1", act(x(t, "dd ffffffff")), errBeyond},
		{"d map32 claims 2^32-1", act(x(t, "df ffffffff")), errBeyond},
		{"d str32 claims 2^32-1", act(x(t, "db ffffffff")), errBeyond},
		{"d bin32 claims 2^32-1", act(x(t, "c6 ffffffff")), errBeyond},
		{"d ext32 claims 2^32-1", act(x(t, "c9 ffffffff 01")), errBeyond},
		{"d array16 one short", act(x(t, "dc 0003 01 02")), errBeyond},
		{"d str8 one short", act(x(t, "d9 03 6162")), errBeyond},
		{"d fixext4 cut short", act(x(t, "d6 01 000000")), errTruncated},
		{"d never used byte", act(x(t, "c1")), errNeverUsed},
		{"d never used byte nested", act(x(t, "92 01 c1")), errNeverUsed},
		{"d array depth 33", act(nestArrays(33)), ErrTooDeep},
		{"d map depth 33", act(nestMaps(33)), ErrTooDeep},
		{"unknown key depth 33", obj(t, "t", "cur", "x", 1, "y", 2, "z", nestArrays(33)), ErrTooDeep},
		{"cursor with malformed d", obj(t, "t", "cur", "x", 1, "y", 2, "d", x(t, "c1")), errNeverUsed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Message{Kind: KindAction, X: 1, Data: []byte{1}}
			err := Decode(tt.in, &m)
			if err != tt.want {
				t.Fatalf("Decode(% x) = %v, want %v", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
			}
			if m.Kind != 0 || m.X != 0 || m.Data != nil {
				t.Errorf("m = %+v after an error, want it zeroed", m)
			}
		})
	}
}

// TestDecodeTruncated cuts valid messages at every offset: each prefix must
// be refused (MessagePack values are self-delimiting, so no proper prefix of
// one is complete), without panicking.
func TestDecodeTruncated(t *testing.T) {
	for _, frame := range validFrames(t) {
		var m Message
		if err := Decode(frame, &m); err != nil {
			t.Fatalf("Decode(% x): %v", frame, err)
		}
		for n := range len(frame) {
			if err := Decode(frame[:n], &m); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(% x) (first %d bytes) = %v, want ErrMalformed", frame[:n], n, err)
			}
		}
	}
}

// validFrames are well-formed client messages covering every value type.
func validFrames(t testing.TB) [][]byte {
	return [][]byte{
		AppendCursor(nil, 1.5, -2),
		cur(x(t, "cf ffffffffffffffff"), x(t, "d1 8000")),
		cur(x(t, "ca 3fc00000"), x(t, "e0")),
		AppendAction(nil, mp(t, map[string]any{"k": []any{1, "two", 3.0, nil, true}})),
		act(x(t, "93 c4 02 0102 c7 01 05 aa d8 01 00112233445566778899aabbccddeeff")),
		act(x(t, "82 da 0001 61 c9 00000001 05 aa db 00000001 62 dd 00000001 c2")),
		act(x(t, "de 0001 cc ff dc 0002 d0 80 d3 0102030405060708")),
		act(x(t, "c5 0002 0102")),
		act(x(t, "c6 00000001 ff")),
		act(x(t, "c8 0001 05 aa")),
		act(x(t, "d4 01 aa")), act(x(t, "d5 01 aabb")), act(x(t, "d7 01 0011223344556677")),
		act(x(t, "cd ffff")), act(x(t, "ce ffffffff")), act(x(t, "d2 ffffffff")),
		act(x(t, "cb 400921fb54442d18")),
		act(nestArrays(MaxDepth)),
		act(nestMaps(MaxDepth)),
		obj(t, []byte{0xd9, 1, 't'}, "cur", "x", 1, "y", 2, "zz", []any{map[string]any{}}),
		manyKeys(t, MaxKeys),
	}
}

func TestDecodeDataIsExact(t *testing.T) {
	d := mp(t, map[string]any{"shape": "circle", "r": 3.25, "tags": []string{"a", "b"}})
	frame := obj(t, "t", "act", "d", d, "extra", "ignored")
	var m Message
	if err := Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Data, d) {
		t.Fatalf("Data = % x, want % x", m.Data, d)
	}
	checkAliases(t, frame, m.Data)
	if &m.Data[0] != &frame[len(frame)-len(d)-len(mp(t, "extra"))-len(mp(t, "ignored"))] {
		t.Fatalf("Data does not start where d does")
	}
}

func TestValidateDepth(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		depth int
		want  error
	}{
		{"scalar at depth 0", []byte{1}, 0, nil},
		{"array at depth 0", x(t, "91 01"), 0, ErrTooDeep},
		{"empty array at depth 0", x(t, "90"), 0, ErrTooDeep},
		{"[1] is 1 deep", x(t, "91 01"), 1, nil},
		{"[[1]] is 2 deep", x(t, "91 91 01"), 2, nil},
		{"[[1]] is more than 1 deep", x(t, "91 91 01"), 1, ErrTooDeep},
		{"[[],[1]] is 2 deep", x(t, "92 90 91 01"), 2, nil},
		{"map is 1 deep", x(t, "81 01 02"), 1, nil},
		{"map key counts", x(t, "81 91 01 02"), 1, ErrTooDeep},
		{"arrays 32 deep", nestArrays(32), MaxDepth, nil},
		{"arrays 33 deep", nestArrays(33), MaxDepth, ErrTooDeep},
		{"maps 32 deep", nestMaps(32), MaxDepth, nil},
		{"maps 33 deep", nestMaps(33), MaxDepth, ErrTooDeep},
		{"negative depth", []byte{1}, -1, nil},
		{"negative depth array", x(t, "90"), -1, ErrTooDeep},
		{"empty", nil, 1, errEmpty},
		{"trailing", x(t, "01 01"), 1, errTrailing},
		{"hostile array32", x(t, "dd ffffffff 00"), MaxDepth, errBeyond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.in, tt.depth); err != tt.want {
				t.Fatalf("Validate(% x, %d) = %v, want %v", tt.in, tt.depth, err, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	all := []error{
		ErrMalformed, ErrTooDeep, errEmpty, errNotMap, errTrailing, errBeyond, errTruncated,
		errNeverUsed, errKeyNotString, errTooManyKeys, errDupKey, errDupT, errDupX, errDupY,
		errDupD, errTMissing, errTNotString, errUnknownT, errXYMissing, errNotNumber,
		errNotFinite, errDMissing,
	}
	seen := map[string]bool{}
	for _, err := range all {
		text := err.Error()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q does not wrap ErrMalformed", text)
		}
		if len(text) >= 100 || !strings.HasPrefix(text, "codec: malformed message") {
			t.Errorf("%q: want < 100 bytes starting with the package prefix", text)
		}
		if seen[text] {
			t.Errorf("%q given twice", text)
		}
		seen[text] = true
	}
	if errors.Is(errNotMap, ErrTooDeep) {
		t.Errorf("errNotMap matches ErrTooDeep")
	}
}

func TestDecodeAllocs(t *testing.T) {
	frames := append(validFrames(t), x(t, "df ffffffff 00"), act(nestArrays(33)), obj(t, "t", "act", "t", "act", "d", 1))
	for _, frame := range frames {
		var m Message
		if n := testing.AllocsPerRun(100, func() { _ = Decode(frame, &m) }); n != 0 {
			t.Errorf("Decode(% x): %v allocations, want 0", frame, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = Validate(frame, MaxDepth+1) }); n != 0 {
			t.Errorf("Validate(% x): %v allocations, want 0", frame, n)
		}
	}
}

func TestSkipStepsOverOneValue(t *testing.T) {
	// [1, "ab"] followed by true: Skip from 0 lands on the true.
	b := []byte{0x92, 0x01, 0xa2, 'a', 'b', 0xc3}
	next, err := Skip(b, 0, MaxDepth)
	if err != nil || next != 5 {
		t.Fatalf("Skip = %d, %v; want 5", next, err)
	}
	if next, err := Skip(b, 5, MaxDepth); err != nil || next != 6 {
		t.Fatalf("Skip at the last value = %d, %v; want 6", next, err)
	}
	if _, err := Skip(b, 6, MaxDepth); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Skip past the end: %v, want ErrMalformed", err)
	}
	if _, err := Skip([]byte{0x91, 0x91, 0x01}, 0, 1); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("Skip of [[1]] with depth 1: %v, want ErrTooDeep", err)
	}
	if _, err := Skip([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, MaxDepth); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Skip of an impossible count: %v, want ErrMalformed", err)
	}
}
