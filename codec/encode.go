package codec

import (
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Cursor is one user's latest position in a batch.
type Cursor struct {
	User string
	X, Y float64
}

// Action is one user's action in a batch. Data is one MessagePack value,
// written unchanged (as Decode returned it in Message.Data).
type Action struct {
	User string
	Data []byte
}

// Batch is what one node says about one event in one tick (PROTOCOL.md
// section 3).
type Batch struct {
	Node    string
	Seq     uint64
	TS      int64 // the node's clock, Unix milliseconds
	Cursors []Cursor
	Actions []Action
	Joins   []string
	Leaves  []string
}

// Encoder appends server frames to a caller's buffer. The zero value is ready
// to use. An Encoder is reusable and allocates nothing per call once warm,
// but it is not safe for concurrent use.
type Encoder struct {
	w   *appendWriter
	enc *msgpack.Encoder
}

// appendWriter is the msgpack.Encoder's writer: it appends to the buffer of
// the call in progress, so frames land directly in the caller's slice. Its
// writes never fail, which is why the Encoder drops the msgpack.Encoder's
// error results (they are always nil).
type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.buf = append(w.buf, c)
	return nil
}

// begin points the encoder at dst for one call.
func (e *Encoder) begin(dst []byte) *msgpack.Encoder {
	if e.enc == nil {
		e.w = new(appendWriter)
		e.enc = msgpack.NewEncoder(e.w)
	}
	e.w.buf = dst
	return e.enc
}

// end returns the grown buffer and forgets it, so the Encoder does not keep
// the caller's memory alive between calls.
func (e *Encoder) end() []byte {
	out := e.w.buf
	e.w.buf = nil
	return out
}

// AppendBatch appends b as a batch frame:
//
//	{"t":"batch","n":NODE,"seq":S,"ts":MS,"cur":[[USER,X,Y],...],
//	 "act":[[USER,V],...],"join":[USER,...],"leave":[USER,...]}
//
// Lists that are empty are left out. Coordinates are always float64s.
func (e *Encoder) AppendBatch(dst []byte, b *Batch) []byte {
	enc := e.begin(dst)
	_ = enc.EncodeMapLen(4 + present(len(b.Cursors)) + present(len(b.Actions)) +
		present(len(b.Joins)) + present(len(b.Leaves)))
	pair(enc, "t", "batch")
	pair(enc, "n", b.Node)
	_ = enc.EncodeString("seq")
	_ = enc.EncodeUint(b.Seq)
	_ = enc.EncodeString("ts")
	_ = enc.EncodeInt(b.TS)
	if len(b.Cursors) > 0 {
		_ = enc.EncodeString("cur")
		_ = enc.EncodeArrayLen(len(b.Cursors))
		for i := range b.Cursors {
			c := &b.Cursors[i]
			_ = enc.EncodeArrayLen(3)
			_ = enc.EncodeString(c.User)
			_ = enc.EncodeFloat64(c.X)
			_ = enc.EncodeFloat64(c.Y)
		}
	}
	if len(b.Actions) > 0 {
		_ = enc.EncodeString("act")
		_ = enc.EncodeArrayLen(len(b.Actions))
		for i := range b.Actions {
			a := &b.Actions[i]
			_ = enc.EncodeArrayLen(2)
			_ = enc.EncodeString(a.User)
			e.raw(a.Data)
		}
	}
	if len(b.Joins) > 0 {
		stringList(enc, "join", b.Joins)
	}
	if len(b.Leaves) > 0 {
		stringList(enc, "leave", b.Leaves)
	}
	return e.end()
}

// AppendWelcome appends the first frame a member receives:
//
//	{"t":"welcome","me":USER,"event":EVENT,"node":NODE,"members":[USER,...]}
func (e *Encoder) AppendWelcome(dst []byte, me, event, node string, members []string) []byte {
	enc := e.begin(dst)
	_ = enc.EncodeMapLen(5)
	pair(enc, "t", "welcome")
	pair(enc, "me", me)
	pair(enc, "event", event)
	pair(enc, "node", node)
	stringList(enc, "members", members)
	return e.end()
}

// clientEncoders lends Encoders to the package-level helpers, which have no
// Encoder of their own, so that they too allocate nothing once warm and are
// safe for concurrent use.
var clientEncoders = sync.Pool{New: func() any { return new(Encoder) }}

// AppendCursor appends the client message {"t":"cur","x":X,"y":Y}, with X and
// Y as float64s.
func AppendCursor(dst []byte, x, y float64) []byte {
	e := clientEncoders.Get().(*Encoder)
	defer clientEncoders.Put(e)
	enc := e.begin(dst)
	_ = enc.EncodeMapLen(3)
	pair(enc, "t", "cur")
	_ = enc.EncodeString("x")
	_ = enc.EncodeFloat64(x)
	_ = enc.EncodeString("y")
	_ = enc.EncodeFloat64(y)
	return e.end()
}

// AppendAction appends the client message {"t":"act","d":D}. d must be one
// MessagePack value; it is written unchanged (empty d is written as nil).
func AppendAction(dst []byte, d []byte) []byte {
	e := clientEncoders.Get().(*Encoder)
	defer clientEncoders.Put(e)
	enc := e.begin(dst)
	_ = enc.EncodeMapLen(2)
	pair(enc, "t", "act")
	_ = enc.EncodeString("d")
	e.raw(d)
	return e.end()
}

func present(n int) int {
	if n > 0 {
		return 1
	}
	return 0
}

func pair(enc *msgpack.Encoder, key, value string) {
	_ = enc.EncodeString(key)
	_ = enc.EncodeString(value)
}

func stringList(enc *msgpack.Encoder, key string, list []string) {
	_ = enc.EncodeString(key)
	_ = enc.EncodeArrayLen(len(list))
	for _, s := range list {
		_ = enc.EncodeString(s)
	}
}

// raw writes v, one MessagePack value, unchanged. It appends to the buffer
// itself rather than through msgpack.RawMessage: that goes through the
// writer's io.Writer interface, which makes v escape, so a caller's
// stack-allocated d would move to the heap on every call. An empty v would
// leave the frame one value short, so it is written as nil instead.
func (e *Encoder) raw(v []byte) {
	if len(v) == 0 {
		_ = e.enc.EncodeNil()
		return
	}
	e.w.buf = append(e.w.buf, v...)
}
