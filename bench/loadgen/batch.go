package loadgen

import "encoding/binary"

// The server's frames come from our own relay, so the receive path does not
// validate them with codec: it walks the bytes once, takes what it needs and
// skips the rest. Every read is still bounded by the slice, so a frame that
// is not what we expect yields an error, never a panic or an allocation.

// message is what walkMessage finds in one server frame. Slices alias the
// frame.
type message struct {
	kind   byte   // kindWelcome, kindBatch or 0 for anything else
	node   []byte // batch "n" or welcome "node"
	seq    uint64 // batch "seq"
	ts     int64  // batch "ts", Unix milliseconds
	cur    []byte // the "cur" value, an array of [USER, X, Y], unless visited
	act    []byte // the "act" value, an array of [USER, V], unless visited
	joins  int    // length of "join"
	leaves int    // length of "leave"
	bad    bool   // an entry of an unexpected shape cut its list short
}

const (
	kindWelcome = 'w'
	kindBatch   = 'b'
)

// entryVisitor receives a batch's entries as walkMessage meets them, with
// the batch's node. (Passing the node rather than the message keeps the
// message on the caller's stack.)
type entryVisitor interface {
	visitCursor(node, user []byte, x, y float64)
	visitAction(node, user, d []byte)
}

// walkMessage reads the top-level map of a server frame into m. Unknown keys
// and values of unexpected types are skipped; only bytes that are not
// MessagePack at all (or run past the frame) are an error.
//
// With a visitor, a batch's entries go to it instead of into m.cur and
// m.act: in the same pass over the bytes when "t" and "n" come first (as
// the relay writes them), or after the walk otherwise.
func walkMessage(b []byte, m *message, v entryVisitor) error {
	*m = message{}
	n, i, err := readMapLen(b, 0)
	if err != nil {
		return err
	}
	for ; n > 0; n-- {
		key, next, err := readStr(b, i)
		if err != nil {
			// Not a string key: skip the key and its value.
			if i, err = skipValue(b, i, maxDepth-1); err != nil {
				return err
			}
			if i, err = skipValue(b, i, maxDepth-1); err != nil {
				return err
			}
			continue
		}
		if i, err = m.field(b, string(key), next, v); err != nil {
			return err
		}
	}
	if i != len(b) {
		return errType // trailing bytes: not one map
	}
	if v != nil && m.kind == kindBatch {
		if m.cur != nil {
			m.visit(m.cur, 0, true, v)
			m.cur = nil
		}
		if m.act != nil {
			m.visit(m.act, 0, false, v)
			m.act = nil
		}
	}
	return nil
}

// field reads the value at b[i] for key and returns the offset past it.
// Switching on string(key) does not allocate.
func (m *message) field(b []byte, key string, i int, v entryVisitor) (int, error) {
	if (key == "cur" || key == "act") && v != nil && m.kind == kindBatch && m.node != nil {
		return m.visit(b, i, key == "cur", v)
	}
	end, err := skipValue(b, i, maxDepth-1)
	if err != nil {
		return 0, err
	}
	switch key {
	case "t":
		if s, _, err := readStr(b, i); err == nil {
			switch string(s) {
			case "batch":
				m.kind = kindBatch
			case "welcome":
				m.kind = kindWelcome
			}
		}
	case "n", "node":
		if s, _, err := readStr(b, i); err == nil {
			m.node = s
		}
	case "seq":
		if v, _, err := readInt(b, i); err == nil {
			m.seq = uint64(v)
		}
	case "ts":
		if v, _, err := readInt(b, i); err == nil {
			m.ts = v
		}
	case "cur":
		m.cur = b[i:end]
	case "act":
		m.act = b[i:end]
	case "join":
		if n, _, err := readArrayLen(b, i); err == nil {
			m.joins = n
		}
	case "leave":
		if n, _, err := readArrayLen(b, i); err == nil {
			m.leaves = n
		}
	}
	return end, nil
}

// visit hands the entries of the list at b[i] to v and returns the offset
// past the list. Reading the entries is the walk over them, so the list is
// not skipped first. An entry of another shape ends the visit (m.bad); the
// list is then skipped generically to find its end.
func (m *message) visit(b []byte, i int, cursors bool, v entryVisitor) (int, error) {
	e, err := openEntries(b[i:])
	for err == nil && e.more() {
		if cursors {
			var user []byte
			var x, y float64
			if user, x, y, err = e.cursor(); err == nil {
				v.visitCursor(m.node, user, x, y)
			}
		} else {
			var user, d []byte
			if user, d, err = e.action(); err == nil {
				v.visitAction(m.node, user, d)
			}
		}
	}
	if err == nil {
		return i + e.i, nil
	}
	m.bad = true
	return skipValue(b, i, maxDepth-1)
}

// entries walks a list of entries, "cur" or "act", one at a time.
type entries struct {
	b    []byte
	i    int
	left int
}

// openEntries starts a walk over list, which may be nil (no entries).
func openEntries(list []byte) (entries, error) {
	if list == nil {
		return entries{}, nil
	}
	n, i, err := readArrayLen(list, 0)
	return entries{b: list, i: i, left: n}, err
}

// more reports whether an entry is left.
func (e *entries) more() bool { return e.left > 0 }

// cursor reads the next [USER, X, Y] entry. Extra elements are skipped.
func (e *entries) cursor() (user []byte, x, y float64, err error) {
	e.left--
	b := e.b
	n, i, err := readArrayLen(b, e.i)
	if err == nil && n < 3 {
		err = errType
	}
	if err == nil {
		user, i, err = readStr(b, i)
	}
	if err == nil {
		x, i, err = readFloat(b, i)
	}
	if err == nil {
		y, i, err = readFloat(b, i)
	}
	for k := 3; err == nil && k < n; k++ {
		i, err = skipValue(b, i, maxDepth-3)
	}
	if err != nil {
		e.left = 0
		return nil, 0, 0, err
	}
	e.i = i
	return user, x, y, nil
}

// action reads the next [USER, V] entry; d is V's bytes. Extra elements are
// skipped.
func (e *entries) action() (user, d []byte, err error) {
	e.left--
	b := e.b
	n, i, err := readArrayLen(b, e.i)
	if err == nil && n < 2 {
		err = errType
	}
	if err == nil {
		user, i, err = readStr(b, i)
	}
	var end int
	if err == nil {
		end, err = skipValue(b, i, maxDepth-3)
		d = b[i:end:end]
		i = end
	}
	for k := 2; err == nil && k < n; k++ {
		i, err = skipValue(b, i, maxDepth-3)
	}
	if err != nil {
		e.left = 0
		return nil, nil, err
	}
	e.i = i
	return user, d, nil
}

// readStamp reads an action value this package sent: [UnixNano, seq]. ok is
// false for any other value (an action some other client sent).
func readStamp(d []byte) (sentNS int64, seq uint64, ok bool) {
	n, i, err := readArrayLen(d, 0)
	if err != nil || n != 2 {
		return 0, 0, false
	}
	sentNS, i, err = readInt(d, i)
	if err != nil {
		return 0, 0, false
	}
	s, i, err := readInt(d, i)
	if err != nil || i != len(d) {
		return 0, 0, false
	}
	return sentNS, uint64(s), true
}

// appendStamp appends the action value [sentNS, seq] as an int64 and a
// uint64, always 19 bytes.
func appendStamp(dst []byte, sentNS int64, seq uint64) []byte {
	dst = append(dst, 0x92, 0xd3)
	dst = binary.BigEndian.AppendUint64(dst, uint64(sentNS))
	dst = append(dst, 0xcf)
	return binary.BigEndian.AppendUint64(dst, seq)
}
