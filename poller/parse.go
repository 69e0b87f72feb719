package poller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// errClosing ends parsing after the connection was told to close.
var errClosing = errors.New("poller: closing")

// Parse is called by nbhttp on the event loop with the bytes of one read.
// It takes whole frames out of them, keeping an incomplete one for the next
// read, and hands data frames to the handler. data belongs to the loop and
// is only valid during the call; masked payloads are unmasked in place.
func (c *Conn) Parse(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		if len(c.held)+len(data) > maxHeld {
			return errors.New("poller: client sent too much before its welcome")
		}
		c.held = append(c.held, data...)
		return nil
	}
	return c.parseLocked(data)
}

// parseLocked parses data; c.mu is held.
func (c *Conn) parseLocked(data []byte) error {
	if len(c.partial) > 0 {
		c.partial = append(c.partial, data...)
		data = c.partial
	}
	for len(data) > 0 {
		n, err := c.nextFrame(data)
		if err != nil {
			c.partial = nil
			if errors.Is(err, errClosing) {
				return nil // CloseWith has arranged the rest
			}
			return err
		}
		if n == 0 {
			break // incomplete frame: wait for more bytes
		}
		data = data[n:]
	}
	c.keep(data)
	return nil
}

// keep saves an incomplete frame. The loop's buffer is reused by the next
// read, so it is copied; and released once a frame completes.
func (c *Conn) keep(rest []byte) {
	switch {
	case len(rest) == 0:
		c.partial = nil
	case len(c.partial) > 0 && &rest[0] == &c.partial[0]:
		// already in partial, at its start
	case len(c.partial) > 0 && cap(c.partial) >= len(rest):
		c.partial = c.partial[:copy(c.partial[:cap(c.partial)], rest)]
	default:
		c.partial = append([]byte(nil), rest...)
	}
}

const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPong         = 0xA
	maxControl     = 125
)

// nextFrame handles the first frame in data and reports its length, or 0 if
// data does not hold a whole frame yet.
func (c *Conn) nextFrame(data []byte) (int, error) {
	if len(data) < 2 {
		return 0, nil
	}
	b0, b1 := data[0], data[1]
	fin, op := b0&finBit != 0, b0&0x0f
	if b0&0x70 != 0 {
		return 0, c.fail(closeProtocolError, "reserved bits set: extensions are not negotiated")
	}
	if b1&0x80 == 0 {
		return 0, c.fail(closeProtocolError, "client frames must be masked")
	}
	length, hdr := uint64(b1&0x7f), 2
	switch length {
	case 126:
		if len(data) < 4 {
			return 0, nil
		}
		length, hdr = uint64(binary.BigEndian.Uint16(data[2:])), 4
	case 127:
		if len(data) < 10 {
			return 0, nil
		}
		length, hdr = binary.BigEndian.Uint64(data[2:]), 10
	}
	control := op&0x8 != 0
	if control && (length > maxControl || !fin) {
		return 0, c.fail(closeProtocolError, "control frames must be whole and at most 125 bytes")
	}
	if !control && length > uint64(c.maxFrame) {
		return 0, c.fail(closeTooBig, fmt.Sprintf("message over %d bytes", c.maxFrame))
	}
	total := hdr + 4 + int(length)
	if len(data) < total {
		return 0, nil
	}
	payload := data[hdr+4 : total]
	unmask(payload, data[hdr:hdr+4])
	c.touch()
	if control {
		return total, c.control(op, payload)
	}
	return total, c.dataFrame(op, fin, payload)
}

func (c *Conn) dataFrame(op byte, fin bool, payload []byte) error {
	switch {
	case op == opContinuation && !c.inMessage:
		return c.fail(closeProtocolError, "continuation frame without a message to continue")
	case op != opContinuation && c.inMessage:
		return c.fail(closeProtocolError, "new message before the last one ended")
	case op > 0x2:
		return c.fail(closeProtocolError, fmt.Sprintf("unknown opcode %#x", op))
	case op != opContinuation:
		c.text = op == opText
	}
	c.inMessage = !fin
	if c.closing.Load() {
		return nil // after our close frame, data is read and dropped
	}
	c.handler.OnFrame(c, !c.text, fin, payload)
	if c.closing.Load() {
		return errClosing
	}
	return nil
}

func (c *Conn) control(op byte, payload []byte) error {
	switch op {
	case opPingCode:
		if c.Pending() > c.maxPending {
			return c.fail(closeTryAgainLater, "slow consumer: pings come faster than the pongs can be sent")
		}
		if !c.closing.Load() {
			f := make([]byte, 2, 2+len(payload))
			f[0], f[1] = finBit|opPong, byte(len(payload))
			_ = c.write(append(f, payload...))
		}
		return nil
	case opPong:
		return nil
	case opClose:
		return c.peerClosed(payload)
	}
	return c.fail(closeProtocolError, fmt.Sprintf("unknown opcode %#x", op))
}

// peerClosed answers the peer's close frame (unless it answers ours) and
// ends the connection.
func (c *Conn) peerClosed(payload []byte) error {
	if c.closing.CompareAndSwap(false, true) {
		code, reason := 1000, "closing"
		switch {
		case len(payload) == 1:
			code, reason = closeProtocolError, "close frame with a one-byte payload"
		case len(payload) >= 2:
			got := int(binary.BigEndian.Uint16(payload))
			switch {
			case !validCloseCode(got):
				code, reason = closeProtocolError, fmt.Sprintf("invalid close code %d", got)
			case !utf8.Valid(payload[2:]):
				code, reason = closeInvalidPayload, "close reason is not UTF-8"
			default:
				code = got
			}
		}
		_ = c.write(closeFrame(code, reason))
	}
	_ = c.nb.Close()
	return errClosing
}

// validCloseCode reports whether a peer may send code (RFC 6455 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// fail closes the connection for a framing fault.
func (c *Conn) fail(code int, reason string) error {
	c.CloseWith(code, reason)
	return errClosing
}

func unmask(b, key []byte) {
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key))
		k |= k << 32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}
