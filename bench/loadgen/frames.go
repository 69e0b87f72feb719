package loadgen

import (
	"encoding/binary"
	"errors"
	"sync"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa
)

// maxFramePayload is the largest server frame accepted. The relay's batches
// are far smaller; a header claiming more is a broken stream, not a frame to
// buffer.
const maxFramePayload = 16 << 20

var errFrame = errors.New("loadgen: malformed WebSocket frame")

// frame is one WebSocket frame; payload aliases the bytes it was read from.
type frame struct {
	op      byte
	fin     bool
	payload []byte
}

// frameHandler receives complete frames. onFrame returns false to stop
// reading (the connection is closing).
type frameHandler interface {
	onFrame(f frame) bool
}

// frameLen reads the header at the start of b. It returns the header's
// length (0 if b holds less than two bytes) and the whole frame's length
// (0 if b is too short to tell).
func frameLen(b []byte) (hdr, total int, err error) {
	if len(b) < 2 {
		return 0, 0, nil
	}
	if b[0]&0x70 != 0 {
		return 0, 0, errFrame // no extension was negotiated, so RSV bits are errors
	}
	hdr = 2
	switch b[1] & 0x7f {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	if b[1]&0x80 != 0 {
		hdr += 4 // masked, which a server should not do; tolerated
	}
	if len(b) < hdr {
		return hdr, 0, nil
	}
	n := uint64(b[1] & 0x7f)
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(b[2:10])
	}
	if n > maxFramePayload {
		return 0, 0, errFrame
	}
	return hdr, hdr + int(n), nil
}

// nextFrame returns the frame at the start of b and its length, or total 0
// if b does not hold a whole frame yet. A masked frame is unmasked in place.
func nextFrame(b []byte) (f frame, total int, err error) {
	hdr, total, err := frameLen(b)
	if err != nil || total == 0 || len(b) < total {
		return frame{}, 0, err
	}
	f = frame{op: b[0] & 0x0f, fin: b[0]&0x80 != 0, payload: b[hdr:total:total]}
	if b[1]&0x80 != 0 {
		key := b[hdr-4 : hdr]
		for i := range f.payload {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, total, nil
}

// partialPool lends buffers to connections that hold an incomplete frame,
// so an idle connection holds none.
var partialPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// maxPooled is the largest buffer returned to partialPool.
const maxPooled = 64 << 10

// frameReader reassembles server frames from reads. It holds a buffer only
// while a frame is incomplete. It is not safe for concurrent use.
type frameReader struct {
	partial *[]byte
}

// feed hands every complete frame in data, after what an earlier call left
// over, to h, and keeps the bytes of an incomplete frame for the next call.
// Payloads are valid only during onFrame.
func (r *frameReader) feed(data []byte, h frameHandler) error {
	if r.partial != nil {
		buf := *r.partial
		for {
			hdr, total, err := frameLen(buf)
			if err != nil {
				r.release()
				return err
			}
			// Bytes missing: from the frame, or else from its header (whose
			// length is known from its first two bytes).
			need := total - len(buf)
			switch {
			case len(buf) < 2:
				need = 2 - len(buf)
			case total == 0:
				need = hdr - len(buf)
			}
			if need == 0 {
				break
			}
			if len(data) == 0 {
				*r.partial = buf
				return nil
			}
			need = min(need, len(data))
			buf = append(buf, data[:need]...)
			data = data[need:]
		}
		*r.partial = buf
		f, _, _ := nextFrame(buf)
		more := h.onFrame(f)
		r.release()
		if !more {
			return nil
		}
	}
	for len(data) > 0 {
		f, total, err := nextFrame(data)
		if err != nil {
			return err
		}
		if total == 0 {
			r.keep(data)
			return nil
		}
		data = data[total:]
		if !h.onFrame(f) {
			return nil
		}
	}
	return nil
}

// keep saves the start of an incomplete frame.
func (r *frameReader) keep(rest []byte) {
	p := partialPool.Get().(*[]byte)
	*p = append((*p)[:0], rest...)
	r.partial = p
}

// release gives the buffer back once no frame is incomplete.
func (r *frameReader) release() {
	if r.partial == nil {
		return
	}
	if cap(*r.partial) <= maxPooled {
		*r.partial = (*r.partial)[:0]
		partialPool.Put(r.partial)
	}
	r.partial = nil
}

// clientHeadroom is the longest client frame header: 2 bytes, an 8-byte
// length and a 4-byte mask key. Client frames are built by appending the
// payload after this much headroom and then filling the header in front.
const clientHeadroom = 14

// clientFrame turns buf (clientHeadroom bytes of headroom, then a payload)
// into one final client frame with opcode op and returns it, a sub-slice of
// buf.
//
// Client frames must be masked (RFC 6455 section 5.3), but the mask key is
// ours to choose, and all zeros is a legal key: XOR with zero leaves the
// payload as it is, so the payload needs no pass over its bytes. The relay
// unmasks whatever key it gets, so this changes nothing on the server.
func clientFrame(buf []byte, op byte) []byte {
	n := len(buf) - clientHeadroom
	var start int
	switch {
	case n < 126:
		start = clientHeadroom - 6
		buf[start+1] = 0x80 | byte(n)
	case n <= 0xffff:
		start = clientHeadroom - 8
		buf[start+1] = 0x80 | 126
		binary.BigEndian.PutUint16(buf[start+2:], uint16(n))
	default:
		start = 0
		buf[1] = 0x80 | 127
		binary.BigEndian.PutUint64(buf[2:], uint64(n))
	}
	buf[start] = 0x80 | op
	clear(buf[clientHeadroom-4 : clientHeadroom]) // the zero mask key
	return buf[start:]
}

// controlFrame builds a masked control frame (ping, pong, close) in buf,
// which needs room for clientHeadroom+125 bytes. Control payloads are at
// most 125 bytes; longer ones are cut.
func controlFrame(buf *[clientHeadroom + 125]byte, op byte, payload []byte) []byte {
	payload = payload[:min(len(payload), 125)]
	n := copy(buf[clientHeadroom:], payload)
	return clientFrame(buf[:clientHeadroom+n], op)
}

// closeFrame builds a client close frame with a status code and no reason.
func closeFrame(buf *[clientHeadroom + 125]byte, code int) []byte {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	return controlFrame(buf, opClose, p[:])
}

// closeCode reads the status code of a close frame's payload; 1005 (no
// status) when it has none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(payload))
}
