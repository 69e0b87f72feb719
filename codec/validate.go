package codec

import "encoding/binary"

// MaxDepth is how deeply arrays and maps may nest in an action's "d" value
// (and in the value of any unknown key). A scalar is 0 deep, [1] is 1 deep,
// [[1]] is 2 deep.
const MaxDepth = 32

// class says what follows a value's header.
type class uint8

const (
	classBytes class = iota // n bytes of payload (str, bin, ext data; 0 for other scalars)
	classArray              // n values
	classMap                // n key/value pairs
)

// Validate checks that b holds exactly one well-formed MessagePack value,
// with arrays and maps nested at most maxDepth deep, every length prefix
// within b and no trailing bytes. It does not allocate, and its work is
// bounded by len(b).
func Validate(b []byte, maxDepth int) error {
	if len(b) == 0 {
		return errEmpty
	}
	end, err := skip(b, 0, maxDepth)
	if err != nil {
		return err
	}
	if end != len(b) {
		return errTrailing
	}
	return nil
}

// Skip checks the value that starts at b[i] like Validate does (every length
// within b, nesting at most maxDepth) and returns the offset just past it:
// for readers that walk a frame and step over the values they do not need.
func Skip(b []byte, i, maxDepth int) (int, error) {
	if i < 0 || i >= len(b) {
		return 0, errBeyond
	}
	return skip(b, i, maxDepth)
}

// skip checks the value that starts at b[i] and returns the offset just past
// it. depth is how many more levels of arrays and maps may open. Recursion is
// bounded by depth, and every value consumes at least one byte, so the walk
// is bounded by len(b) whatever the counts claim.
func skip(b []byte, i, depth int) (int, error) {
	c, hdr, n, err := head(b, i)
	if err != nil {
		return 0, err
	}
	i += hdr
	rest := uint64(len(b) - i)
	switch c {
	case classArray:
	case classMap:
		n *= 2 // a key and a value per entry; n < 2^32, so no overflow
	default:
		if n > rest {
			return 0, errBeyond
		}
		return i + int(n), nil
	}
	if depth <= 0 {
		return 0, ErrTooDeep
	}
	// Each value takes at least one byte: refuse impossible counts before
	// looping over them.
	if n > rest {
		return 0, errBeyond
	}
	for ; n > 0; n-- {
		if i, err = skip(b, i, depth-1); err != nil {
			return 0, err
		}
	}
	return i, nil
}

// Shape says what follows a value's header: payload bytes (str, bin, ext
// data; none for other scalars, whose bytes count as header), values
// (array) or key/value pairs (map).
type Shape uint8

// The shapes Head reports.
const (
	ShapeBytes = Shape(classBytes)
	ShapeArray = Shape(classArray)
	ShapeMap   = Shape(classMap)
)

// Head reads the header of the value that starts at b[i]: its shape, the
// header's length, and n (payload bytes, values or pairs). The header (and
// a fixed-width scalar entire) lies within b; n is checked against nothing:
// the caller checks it against what remains before trusting it.
func Head(b []byte, i int) (shape Shape, hdr int, n uint64, err error) {
	if i < 0 {
		return 0, 0, 0, errTruncated
	}
	c, hdr, n, err := head(b, i)
	return Shape(c), hdr, n, err
}

// head reads the header of the value that starts at b[i]: what follows it,
// the header's length in bytes, and n (payload bytes, values or pairs). It
// checks that the header itself, and the whole of a fixed-width scalar, lie
// within b; the caller checks n against what remains.
func head(b []byte, i int) (c class, hdr int, n uint64, err error) {
	if i >= len(b) {
		return 0, 0, 0, errTruncated
	}
	switch t := b[i]; {
	case t <= 0x7f || t >= 0xe0: // positive and negative fixint
		return classBytes, 1, 0, nil
	case t <= 0x8f:
		return classMap, 1, uint64(t & 0x0f), nil
	case t <= 0x9f:
		return classArray, 1, uint64(t & 0x0f), nil
	case t <= 0xbf: // fixstr
		return classBytes, 1, uint64(t & 0x1f), nil
	}
	return headC(b, i)
}

// headC is head for the type bytes 0xc0 to 0xdf, those that are not fixed.
func headC(b []byte, i int) (c class, hdr int, n uint64, err error) {
	switch b[i] {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return classBytes, 1, 0, nil
	case 0xc1:
		return 0, 0, 0, errNeverUsed
	case 0xc4, 0xd9: // bin8, str8
		return prefixed(b, i, classBytes, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return prefixed(b, i, classBytes, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return prefixed(b, i, classBytes, 4, 0)
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: length, then a type byte
		return prefixed(b, i, classBytes, 1<<(b[i]-0xc7), 1)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return fixed(b, i, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return fixed(b, i, 8)
	case 0xcc, 0xd0: // uint8, int8
		return fixed(b, i, 1)
	case 0xcd, 0xd1: // uint16, int16
		return fixed(b, i, 2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte, data
		return fixed(b, i, 1+1<<(b[i]-0xd4))
	case 0xdc, 0xde: // array16, map16
		return prefixed(b, i, classOf(b[i]), 2, 0)
	default: // 0xdd array32, 0xdf map32
		return prefixed(b, i, classOf(b[i]), 4, 0)
	}
}

func classOf(t byte) class {
	if t == 0xdc || t == 0xdd {
		return classArray
	}
	return classMap
}

// fixed is the header of a scalar of the given width after its type byte;
// the whole scalar counts as header.
func fixed(b []byte, i, width int) (class, int, uint64, error) {
	if len(b)-i <= width {
		return 0, 0, 0, errTruncated
	}
	return classBytes, 1 + width, 0, nil
}

// prefixed reads a big-endian length of size bytes after the type byte at
// b[i], followed by extra header bytes (an ext's type).
func prefixed(b []byte, i int, c class, size, extra int) (class, int, uint64, error) {
	hdr := 1 + size + extra
	if len(b)-i < hdr {
		return 0, 0, 0, errTruncated
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
	return c, hdr, n, nil
}
