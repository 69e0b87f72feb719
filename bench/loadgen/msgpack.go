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

// maxDepth bounds how deeply a frame may nest, with the meaning of
// codec.MaxDepth ([[1]] is 2 deep): a batch holds an action's d three levels
// down (map, act list, entry), so a frame is up to MaxDepth+3 deep. Values
// skipped inside the map or an entry get the depth left at their level.
const maxDepth = codec.MaxDepth + 3

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

// What follows a value's header (codec.Head's shapes).
const (
	kindBytes = int(codec.ShapeBytes) // n bytes of payload (0 for fixed scalars, whose bytes count as header)
	kindArray = int(codec.ShapeArray) // n values
	kindMap   = int(codec.ShapeMap)   // n key/value pairs
)

// head reads the header of the value at b[i] with the codec's reader: what
// follows it, the header's length and n. n is known to fit in b's length.
func head(b []byte, i int) (kind, hdr, n int, err error) {
	shape, hdr, n64, err := codec.Head(b, i)
	switch {
	case err != nil && i < len(b) && b[i] == 0xc1:
		return 0, 0, 0, errType // never used
	case err != nil, n64 > uint64(len(b)): // also keeps int conversion safe on 32-bit
		return 0, 0, 0, errShort
	}
	return int(shape), hdr, int(n64), nil
}
