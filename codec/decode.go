package codec

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
)

// MaxKeys is the most keys a client message map may have. PROTOCOL.md sets no
// such limit; ours keeps duplicate-key detection bounded (at most
// MaxKeys*(MaxKeys-1)/2 comparisons) without allocating.
const MaxKeys = 64

// Kind says which client message a Message is.
type Kind uint8

const (
	KindCursor Kind = iota + 1 // {"t":"cur","x":X,"y":Y}
	KindAction                 // {"t":"act","d":V}
)

// Message is one decoded client message. Data aliases the frame it was
// decoded from (nothing is copied): it is valid only as long as the frame's
// bytes are, so copy it before the frame's buffer is reused. Its capacity is
// capped at its length, so appending to it never overwrites the frame.
type Message struct {
	Kind Kind
	X, Y float64 // KindCursor: the coordinates, converted to float64
	Data []byte  // KindAction: the exact bytes of the "d" value as received
}

// Decode validates frame as exactly one client message (PROTOCOL.md section
// 2) and fills m. Every error wraps ErrMalformed. On error m is zeroed.
// Decode does not allocate.
func Decode(frame []byte, m *Message) error {
	*m = Message{}
	var f fields
	if err := f.scan(frame); err != nil {
		return err
	}
	return f.fill(frame, m)
}

// span is b[start:end] of a frame. No value ends at offset 0 (the map header
// is there), so the zero span means "absent".
type span struct{ start, end int }

func (s span) present() bool { return s.end > 0 }

// fields is where the known keys' values lie in a frame.
type fields struct{ t, x, y, d span }

// fewKeys is how many keys most messages have at most; their duplicate
// check uses a smaller table, which is cheaper to clear.
const fewKeys = 8

// scan walks the message map once: it checks its structure, refuses
// duplicate keys and records where the known keys' values are.
func (f *fields) scan(b []byte) error {
	if len(b) == 0 {
		return errEmpty
	}
	if !isMap(b[0]) {
		return errNotMap
	}
	_, i, n, err := head(b, 0)
	if err != nil {
		return err
	}
	if n*2 > uint64(len(b)-i) { // each pair takes at least two bytes
		return errBeyond
	}
	if n > MaxKeys {
		return errTooManyKeys
	}
	if n <= fewKeys {
		var seen [fewKeys]seenKey
		i, err = f.pairs(b, i, seen[:n])
	} else {
		var seen [MaxKeys]seenKey
		i, err = f.pairs(b, i, seen[:n])
	}
	if err != nil {
		return err
	}
	if i != len(b) {
		return errTrailing
	}
	return nil
}

// pairs walks len(seen) key/value pairs from b[i], filling seen with their
// keys, and returns the offset past the last value.
func (f *fields) pairs(b []byte, i int, seen []seenKey) (int, error) {
	for k := range seen {
		key, err := keyAt(b, i)
		if err != nil {
			return 0, err
		}
		name := b[key.start:key.end]
		seen[k] = seenKey{id: keyID(name), span: key}
		if err := checkNew(b, seen[:k+1]); err != nil {
			return 0, err
		}
		// Every value, known key or not, must be well-formed and within
		// MaxDepth: the frame may be relayed or logged as it is.
		end, err := skip(b, key.end, MaxDepth)
		if err != nil {
			return 0, err
		}
		f.record(name, span{key.end, end})
		i = end
	}
	return i, nil
}

// seenKey is a key already read: where it is, and an ID to compare first.
type seenKey struct {
	id uint64
	span
}

// keySeed randomizes the IDs of long keys per process, so a client cannot
// pick many distinct keys whose IDs collide and force byte-by-byte compares.
var keySeed = maphash.MakeSeed()

// keyID is cheap to compare and equal for equal keys. Keys of up to 8 bytes,
// almost all of them, are packed as they are rather than hashed.
func keyID(name []byte) uint64 {
	if len(name) > 8 {
		return maphash.Bytes(keySeed, name)
	}
	var id uint64
	for i, c := range name {
		id |= uint64(c) << (8 * i)
	}
	return id
}

// checkNew refuses the last key of seen if it equals an earlier one. IDs of
// different keys rarely match (short keys of equal length never do), so
// bytes are compared only to confirm.
func checkNew(b []byte, seen []seenKey) error {
	last := seen[len(seen)-1]
	name := b[last.start:last.end]
	for _, s := range seen[:len(seen)-1] {
		if s.id == last.id && bytes.Equal(b[s.start:s.end], name) {
			return dupError(name)
		}
	}
	return nil
}

func dupError(name []byte) error {
	switch string(name) { // no allocation: the compiler compares in place
	case "t":
		return errDupT
	case "x":
		return errDupX
	case "y":
		return errDupY
	case "d":
		return errDupD
	}
	return errDupKey
}

// record notes where the value of a known key lies; other keys are ignored.
func (f *fields) record(name []byte, v span) {
	switch string(name) {
	case "t":
		f.t = v
	case "x":
		f.x = v
	case "y":
		f.y = v
	case "d":
		f.d = v
	}
}

// fill interprets the recorded values by the message type.
func (f *fields) fill(b []byte, m *Message) error {
	if !f.t.present() {
		return errTMissing
	}
	t, ok := stringAt(b, f.t)
	if !ok {
		return errTNotString
	}
	switch string(t) {
	case "cur":
		return f.fillCursor(b, m)
	case "act":
		if !f.d.present() {
			return errDMissing
		}
		m.Kind = KindAction
		// Capped so that appending to Data can never overwrite the frame.
		m.Data = b[f.d.start:f.d.end:f.d.end]
		return nil
	}
	return errUnknownT
}

func (f *fields) fillCursor(b []byte, m *Message) error {
	if !f.x.present() || !f.y.present() {
		return errXYMissing
	}
	x, err := number(b[f.x.start:f.x.end])
	if err != nil {
		return err
	}
	y, err := number(b[f.y.start:f.y.end])
	if err != nil {
		return err
	}
	m.Kind, m.X, m.Y = KindCursor, x, y
	return nil
}

func isMap(t byte) bool { return t&0xf0 == 0x80 || t == 0xde || t == 0xdf }

func isString(t byte) bool { return t&0xe0 == 0xa0 || (t >= 0xd9 && t <= 0xdb) }

// keyAt returns the payload of the string key that starts at b[i]; its end is
// where the key's value starts.
func keyAt(b []byte, i int) (span, error) {
	if i < len(b) && !isString(b[i]) {
		return span{}, errKeyNotString
	}
	_, hdr, n, err := head(b, i)
	if err != nil {
		return span{}, err
	}
	start := i + hdr
	if n > uint64(len(b)-start) {
		return span{}, errBeyond
	}
	return span{start, start + int(n)}, nil
}

// stringAt returns the payload of v if v, already validated, is a string.
func stringAt(b []byte, v span) ([]byte, bool) {
	if !isString(b[v.start]) {
		return nil, false
	}
	_, hdr, _, _ := head(b, v.start)
	return b[v.start+hdr : v.end], true
}

// number converts one validated MessagePack value to a finite float64.
func number(v []byte) (float64, error) {
	var x float64
	switch t := v[0]; {
	case t <= 0x7f:
		return float64(t), nil
	case t >= 0xe0:
		return float64(int8(t)), nil
	case t == 0xcc:
		x = float64(v[1])
	case t == 0xcd:
		x = float64(binary.BigEndian.Uint16(v[1:]))
	case t == 0xce:
		x = float64(binary.BigEndian.Uint32(v[1:]))
	case t == 0xcf:
		x = float64(binary.BigEndian.Uint64(v[1:]))
	case t == 0xd0:
		x = float64(int8(v[1]))
	case t == 0xd1:
		x = float64(int16(binary.BigEndian.Uint16(v[1:])))
	case t == 0xd2:
		x = float64(int32(binary.BigEndian.Uint32(v[1:])))
	case t == 0xd3:
		x = float64(int64(binary.BigEndian.Uint64(v[1:])))
	case t == 0xca:
		x = float64(math.Float32frombits(binary.BigEndian.Uint32(v[1:])))
	case t == 0xcb:
		x = math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
	default:
		return 0, errNotNumber
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, errNotFinite
	}
	return x, nil
}
