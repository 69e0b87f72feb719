package poller

import "encoding/binary"

// MaxHeaderLen is the longest WebSocket header a server frame needs (no
// mask). Callers reserve this much headroom in front of a payload so that a
// frame can be built in place, without copying the payload.
const MaxHeaderLen = 10

const (
	opBinary   = 0x2
	opPingCode = 0x9
	finBit     = 0x80
)

// PrepareFrame turns buf, whose first MaxHeaderLen bytes are headroom and
// whose remainder is a payload, into one unmasked binary WebSocket frame. It
// returns the frame, a sub-slice of buf. The same frame may be written to any
// number of connections: server frames carry no mask, so their bytes are the
// same for every receiver.
func PrepareFrame(buf []byte) []byte {
	payload := len(buf) - MaxHeaderLen
	var hdr int
	switch {
	case payload < 126:
		hdr = 2
		buf[MaxHeaderLen-1] = byte(payload)
	case payload <= 0xffff:
		hdr = 4
		buf[MaxHeaderLen-3] = 126
		binary.BigEndian.PutUint16(buf[MaxHeaderLen-2:MaxHeaderLen], uint16(payload))
	default:
		hdr = 10
		buf[MaxHeaderLen-9] = 127
		binary.BigEndian.PutUint64(buf[MaxHeaderLen-8:MaxHeaderLen], uint64(payload))
	}
	start := MaxHeaderLen - hdr
	buf[start] = finBit | opBinary
	return buf[start:]
}

// FramePayload returns the payload of a frame built by PrepareFrame.
func FramePayload(buf []byte) []byte { return buf[MaxHeaderLen:] }

// pingFrame is an empty ping, written as is to every connection that needs one.
var pingFrame = []byte{finBit | opPingCode, 0}
