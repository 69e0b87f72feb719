package codec

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// mp is msgpack.Marshal for test inputs that cannot fail.
func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return b
}

// obj builds a map with its keys in the given order (msgpack.Marshal of a Go
// map would order them at random): kv alternates keys and values. A []byte
// value is taken as already encoded.
func obj(t testing.TB, kv ...any) []byte {
	t.Helper()
	out := mapHeader(len(kv) / 2)
	for _, v := range kv {
		out = append(out, enc(t, v)...)
	}
	return out
}

func enc(t testing.TB, v any) []byte {
	if raw, ok := v.([]byte); ok {
		return raw
	}
	return mp(t, v)
}

func mapHeader(n int) []byte {
	switch {
	case n < 16:
		return []byte{0x80 | byte(n)}
	case n <= 0xffff:
		return []byte{0xde, byte(n >> 8), byte(n)}
	}
	return []byte{0xdf, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// x parses hex with spaces, for hostile frames written byte by byte.
func x(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// nestArrays is n arrays, each holding the next, around a 1: [[...[1]...]].
func nestArrays(n int) []byte {
	return cat(bytes.Repeat([]byte{0x91}, n), []byte{0x01})
}

// nestMaps is n maps {"a": ...} around a 1.
func nestMaps(n int) []byte {
	return cat(bytes.Repeat([]byte{0x81, 0xa1, 'a'}, n), []byte{0x01})
}

// cur is {"t":"cur","x":X,"y":Y} with X and Y already encoded.
func cur(x, y []byte) []byte {
	return cat([]byte{0x83, 0xa1, 't', 0xa3, 'c', 'u', 'r', 0xa1, 'x'}, x, []byte{0xa1, 'y'}, y)
}

// act is {"t":"act","d":D} with D already encoded.
func act(d []byte) []byte {
	return cat([]byte{0x82, 0xa1, 't', 0xa3, 'a', 'c', 't', 0xa1, 'd'}, d)
}
