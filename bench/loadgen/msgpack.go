package loadgen

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/relay-dev/relay/codec"
)

// MessagePack primitives for the receive path. Each reads the value at b[i]
// and returns the offset past it; none reads outside b or allocates.

var (
	errShort = errors.New("loadgen: msgpack value runs past the frame")
	errType  = errors.New("loadgen: unexpected msgpack type")
	errDeep  = errors.New("loadgen: msgpack nested too deep")
)

// maxDepth bounds how deeply skipValue follows arrays and maps, with the
// same meaning as codec.MaxDepth ([[1]] is 2 deep).
const maxDepth = codec.MaxDepth

// readMapLen reads a map header at b[i].
func readMapLen(b []byte, i int) (n, next int, err error) {
	k, hdr, size, err := head(b, i)
	if err != nil {
		return 0, 0, err
	}
	if k != kindMap {
		return 0, 0, errType
	}
	return size, i + hdr, nil
}

// readArrayLen reads an array header at b[i].
func readArrayLen(b []byte, i int) (n, next int, err error) {
	k, hdr, size, err := head(b, i)
	if err != nil {
		return 0, 0, err
	}
	if k != kindArray {
		return 0, 0, errType
	}
	return size, i + hdr, nil
}

// readStr reads a string at b[i]; s aliases b.
func readStr(b []byte, i int) (s []byte, next int, err error) {
	if i >= len(b) {
		return nil, 0, errShort
	}
	if t := b[i]; !(t&0xe0 == 0xa0 || (t >= 0xd9 && t <= 0xdb)) {
		return nil, 0, errType
	}
	_, hdr, size, err := head(b, i)
	if err != nil {
		return nil, 0, err
	}
	start := i + hdr
	if size > len(b)-start {
		return nil, 0, errShort
	}
	return b[start : start+size], start + size, nil
}

// readInt reads any MessagePack integer at b[i]. A uint64 above MaxInt64
// comes back with the same bits (callers that want a uint64 convert back).
func readInt(b []byte, i int) (v int64, next int, err error) {
	if i >= len(b) {
		return 0, 0, errShort
	}
	t := b[i]
	switch {
	case t <= 0x7f:
		return int64(t), i + 1, nil
	case t >= 0xe0:
		return int64(int8(t)), i + 1, nil
	}
	var w int
	switch t {
	case 0xcc, 0xd0:
		w = 1
	case 0xcd, 0xd1:
		w = 2
	case 0xce, 0xd2:
		w = 4
	case 0xcf, 0xd3:
		w = 8
	default:
		return 0, 0, errType
	}
	if len(b)-i <= w {
		return 0, 0, errShort
	}
	p := b[i+1 : i+1+w]
	switch t {
	case 0xcc:
		v = int64(p[0])
	case 0xd0:
		v = int64(int8(p[0]))
	case 0xcd:
		v = int64(binary.BigEndian.Uint16(p))
	case 0xd1:
		v = int64(int16(binary.BigEndian.Uint16(p)))
	case 0xce:
		v = int64(binary.BigEndian.Uint32(p))
	case 0xd2:
		v = int64(int32(binary.BigEndian.Uint32(p)))
	default: // 0xcf, 0xd3
		v = int64(binary.BigEndian.Uint64(p))
	}
	return v, i + 1 + w, nil
}

// readFloat reads any MessagePack number at b[i] as a float64.
func readFloat(b []byte, i int) (v float64, next int, err error) {
	if i >= len(b) {
		return 0, 0, errShort
	}
	switch b[i] {
	case 0xca:
		if len(b)-i <= 4 {
			return 0, 0, errShort
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b[i+1:]))), i + 5, nil
	case 0xcb:
		if len(b)-i <= 8 {
			return 0, 0, errShort
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b[i+1:])), i + 9, nil
	case 0xcf:
		if len(b)-i <= 8 {
			return 0, 0, errShort
		}
		return float64(binary.BigEndian.Uint64(b[i+1:])), i + 9, nil
	}
	n, next, err := readInt(b, i)
	return float64(n), next, err
}

// skipValue returns the offset just past the value at b[i], with the
// codec's bounded walk: counts larger than what remains fail at once.
func skipValue(b []byte, i, depth int) (int, error) {
	next, err := codec.Skip(b, i, depth)
	if err != nil {
		if errors.Is(err, codec.ErrTooDeep) {
			return 0, errDeep
		}
		return 0, errShort
	}
	return next, nil
}

// What follows a value's header.
const (
	kindBytes = iota // n bytes of payload (0 for fixed scalars, whose bytes count as header)
	kindArray        // n values
	kindMap          // n key/value pairs
)

// head reads the header of the value at b[i]: what follows it, the header's
// length and n. The header (and a fixed-width scalar entire) lies within b;
// the caller checks n against what remains.
func head(b []byte, i int) (kind, hdr, n int, err error) {
	if i < 0 || i >= len(b) {
		return 0, 0, 0, errShort
	}
	t := b[i]
	switch {
	case t <= 0x7f || t >= 0xe0:
		return kindBytes, 1, 0, nil
	case t <= 0x8f:
		return kindMap, 1, int(t & 0x0f), nil
	case t <= 0x9f:
		return kindArray, 1, int(t & 0x0f), nil
	case t <= 0xbf:
		return kindBytes, 1, int(t & 0x1f), nil
	}
	switch t {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return kindBytes, 1, 0, nil
	case 0xc4, 0xd9: // bin8, str8
		return sized(b, i, kindBytes, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return sized(b, i, kindBytes, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return sized(b, i, kindBytes, 4, 0)
	case 0xc7: // ext8: length, then a type byte
		return sized(b, i, kindBytes, 1, 1)
	case 0xc8: // ext16
		return sized(b, i, kindBytes, 2, 1)
	case 0xc9: // ext32
		return sized(b, i, kindBytes, 4, 1)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return fixedWidth(b, i, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return fixedWidth(b, i, 8)
	case 0xcc, 0xd0: // uint8, int8
		return fixedWidth(b, i, 1)
	case 0xcd, 0xd1: // uint16, int16
		return fixedWidth(b, i, 2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte, data
		return fixedWidth(b, i, 1+1<<(t-0xd4))
	case 0xdc: // array16
		return sized(b, i, kindArray, 2, 0)
	case 0xdd: // array32
		return sized(b, i, kindArray, 4, 0)
	case 0xde: // map16
		return sized(b, i, kindMap, 2, 0)
	case 0xdf: // map32
		return sized(b, i, kindMap, 4, 0)
	}
	return 0, 0, 0, errType // 0xc1, never used
}

// fixedWidth is a scalar with width bytes after its type byte.
func fixedWidth(b []byte, i, width int) (int, int, int, error) {
	if len(b)-i <= width {
		return 0, 0, 0, errShort
	}
	return kindBytes, 1 + width, 0, nil
}

// sized reads a big-endian length of size bytes after the type byte at b[i],
// followed by extra header bytes (an ext's type).
func sized(b []byte, i, kind, size, extra int) (int, int, int, error) {
	hdr := 1 + size + extra
	if len(b)-i < hdr {
		return 0, 0, 0, errShort
	}
	p := b[i+1 : i+1+size]
	var n uint64
	switch size {
	case 1:
		n = uint64(p[0])
	case 2:
		n = uint64(binary.BigEndian.Uint16(p))
	default:
		n = uint64(binary.BigEndian.Uint32(p))
	}
	if n > uint64(len(b)) { // cannot fit; also keeps int conversion safe on 32-bit
		return 0, 0, 0, errShort
	}
	return kind, hdr, int(n), nil
}
