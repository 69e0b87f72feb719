package poller

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// ErrClosed is returned by writes to a connection that is closed or closing.
var ErrClosed = errors.New("poller: connection closed")

// Close codes the poller sends itself, for framing faults (RFC 6455).
const (
	closeProtocolError  = 1002
	closeInvalidPayload = 1007
	closeTooBig         = 1009
	closeTryAgainLater  = 1013
)

// Conn is one upgraded WebSocket connection. It parses the client's frames
// itself rather than through nbio's websocket package: that one hides empty
// frames and judges text frames before the caller sees them, and the relay
// must refuse both with its own close codes.
type Conn struct {
	nb         net.Conn // the nbio connection; a fake in tests
	maxFrame   int
	maxPending int
	grace      time.Duration
	after      func(time.Duration, func()) // runs a function later (nbio's timer)
	handler    Handler

	// mu guards the parse state. Parse runs on the event loop and Start on
	// the handler pool; they never run at once, and neither runs
	// handler.OnClose under it.
	mu        sync.Mutex
	ready     bool   // Start has run: frames go to the handler
	held      []byte // bytes that arrived before Start
	early     bool   // the socket closed before Start
	earlyErr  error
	partial   []byte // an incomplete frame, copied out of the loop's buffer
	inMessage bool   // a fragmented data message is open
	text      bool   // ... and it is a text message

	pending  atomic.Int64 // bytes handed to the socket and not yet sent
	lastRead atomic.Int64 // unix nanoseconds of the last frame received, control frames included
	closing  atomic.Bool  // a close frame has been sent; data frames are ignored
	closed   sync.Once
}

// Upgrade completes the WebSocket handshake for r. The caller has already
// checked the request (CheckHandshake) and everything else that decides
// whether to accept. Frames reach h only after the caller calls Start, so
// that it can finish setting up (and write its first frame) before the
// first message or the close arrives.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, h Handler) (*Conn, error) {
	res, hc, nb, ok := socketOf(w)
	if !ok {
		http.Error(w, "not served by the event loop", http.StatusInternalServerError)
		return nil, errors.New("poller: the request did not come through nbhttp on an nbio connection")
	}
	if _, _, err := res.Hijack(); err != nil {
		return nil, err
	}
	c := &Conn{nb: nb, maxFrame: s.cfg.MaxFrame, maxPending: s.cfg.MaxPending, grace: s.cfg.CloseGrace, handler: h,
		after: func(d time.Duration, f func()) { s.engine.AfterFunc(d, f) }}
	c.lastRead.Store(time.Now().UnixNano())
	// From here on the event loop hands this connection's bytes to c: the
	// rest of this read through the HTTP parser, later reads directly.
	res.Parser.ParserCloser = c
	nb.SetSession(c)
	hc.Parser = nil
	_ = nb.SetReadDeadline(time.Time{}) // liveness is the caller's now
	s.clearAgain(nb)
	accept := acceptKey(r.Header.Get("Sec-WebSocket-Key"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n"
	if _, err := nb.Write([]byte(resp)); err != nil {
		return nil, ErrClosed
	}
	return c, nil
}

// socketOf finds, under a response nbhttp handed a handler, the parser's
// wrapped connection and the nbio socket beneath it.
func socketOf(w http.ResponseWriter) (*nbhttp.Response, *nbhttp.Conn, *nbio.Conn, bool) {
	res, ok := w.(*nbhttp.Response)
	if !ok || res.Parser == nil {
		return nil, nil, nil, false
	}
	hc, ok := res.Parser.Conn.(*nbhttp.Conn)
	if !ok {
		return nil, nil, nil, false
	}
	nb, ok := hc.Conn.(*nbio.Conn)
	return res, hc, nb, ok
}

// CheckHandshake reports what is wrong with r as a WebSocket handshake, as
// an HTTP status and a message, or 0 and "" if nothing is.
func CheckHandshake(r *http.Request) (int, string) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return http.StatusBadRequest, "this is a WebSocket endpoint: connect with a WebSocket client (Connection: Upgrade, Upgrade: websocket)"
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))); err != nil || len(key) != 16 {
		return http.StatusBadRequest, "missing or malformed Sec-WebSocket-Key header (16 random bytes, base64)"
	}
	if strings.TrimSpace(r.Header.Get("Sec-WebSocket-Version")) != "13" {
		return http.StatusUpgradeRequired, "unsupported WebSocket version: use 13"
	}
	return 0, ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(strings.TrimSpace(key)))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// UnderlayerConn is for nbhttp's ParserCloser.
func (c *Conn) UnderlayerConn() net.Conn { return c.nb }

// maxHeld bounds what a client may send before Start; real clients wait
// for the 101 and the first frame.
const maxHeld = 64 << 10

// Start hands the connection's frames, from the first, to its handler. If
// the socket closed in the meantime, the handler's OnClose runs instead.
func (c *Conn) Start() {
	c.mu.Lock()
	c.ready = true
	if c.early {
		c.mu.Unlock()
		c.finish(c.earlyErr)
		return
	}
	held := c.held
	c.held = nil
	err := c.parseLocked(held)
	c.mu.Unlock()
	if err != nil {
		_ = c.nb.Close()
	}
}

// CloseAndClean is called once by nbhttp when the socket is gone, on the
// handler pool.
func (c *Conn) CloseAndClean(err error) {
	c.mu.Lock()
	if !c.ready {
		c.early, c.earlyErr = true, err
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.finish(err)
}

func (c *Conn) finish(err error) {
	c.closed.Do(func() {
		c.closing.Store(true)
		c.handler.OnClose(c, err)
	})
}

// onWritten runs under nbio's connection lock whenever bytes reach the
// socket, and keeps Pending exact.
func onWritten(nb *nbio.Conn, _ []byte, n int) {
	c, ok := nb.Session().(*Conn)
	if !ok {
		return // still plain HTTP
	}
	// The 101 response was written before counting began; clamp at zero
	// rather than go negative.
	for {
		old := c.pending.Load()
		next := max(old-int64(n), 0)
		if c.pending.CompareAndSwap(old, next) {
			return
		}
	}
}

func (c *Conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// LastRead is when the connection last received a frame of any kind.
func (c *Conn) LastRead() time.Time { return time.Unix(0, c.lastRead.Load()) }

// Pending is the number of bytes written to the connection that the socket
// has not taken yet: what a slow reader costs this node.
func (c *Conn) Pending() int { return int(c.pending.Load()) }

// WriteFrame writes a frame built by PrepareFrame. It never blocks: what the
// socket cannot take now is buffered and shows in Pending.
func (c *Conn) WriteFrame(frame []byte) error {
	if c.closing.Load() {
		return ErrClosed
	}
	return c.write(frame)
}

func (c *Conn) write(frame []byte) error {
	c.pending.Add(int64(len(frame)))
	if _, err := c.nb.Write(frame); err != nil {
		return ErrClosed
	}
	return nil
}

// Ping sends an empty ping frame.
func (c *Conn) Ping() error { return c.WriteFrame(pingFrame) }

// CloseWith starts a closing handshake: it sends a close frame with code and
// reason, ignores further data frames, and closes the socket when the peer
// answers or after the grace period, whichever comes first. Closing the
// socket at once could reset the connection before the peer reads why.
func (c *Conn) CloseWith(code int, reason string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	if reason == "" {
		reason = "closing" // every close frame says why
	}
	if err := c.write(closeFrame(code, reason)); err != nil {
		_ = c.nb.Close()
		return
	}
	c.after(c.grace, func() { _ = c.nb.Close() })
}

// closeFrame builds a close frame; the reason is cut to fit the 125-byte
// payload of a control frame.
func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	f := make([]byte, 4, 4+len(reason))
	f[0] = finBit | opClose
	f[1] = byte(2 + len(reason))
	binary.BigEndian.PutUint16(f[2:], uint16(code))
	return append(f, reason...)
}
