package poller

import (
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// ErrClosed is returned by writes to a connection that is closed or closing.
var ErrClosed = errors.New("poller: connection closed")

// Conn is one upgraded WebSocket connection.
type Conn struct {
	ws      *websocket.Conn
	nb      *nbio.Conn
	srv     *Server
	handler Handler

	pending  atomic.Int64 // bytes handed to the socket and not yet sent
	lastRead atomic.Int64 // unix nanoseconds of the last frame received, control frames included
	closing  atomic.Bool  // a close frame has been sent; data frames are ignored
}

// Upgrade completes the WebSocket handshake for r and hands the connection's
// frames to h. The caller has already checked everything that decides
// whether to accept; Upgrade answers only malformed handshakes itself.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, h Handler) (*Conn, error) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	nb, ok := underlying(ws)
	if !ok {
		_ = ws.Close()
		return nil, errors.New("poller: upgraded connection is not an nbio connection")
	}
	c := &Conn{ws: ws, nb: nb, srv: s, handler: h}
	c.lastRead.Store(time.Now().UnixNano())
	ws.SetSession(c)
	return c, nil
}

func (s *Server) newUpgrader() *websocket.Upgrader {
	u := websocket.NewUpgrader()
	u.Engine = s.engine
	// Liveness is the caller's (one sweep over all connections, not a timer
	// per connection), so nbio must not arm read deadlines per message.
	u.KeepaliveTime = 0
	u.MessageLengthLimit = s.cfg.MaxFrame
	u.ReleasePayload = true
	// Origins are checked by the caller before Upgrade, with its own list.
	u.CheckOrigin = func(*http.Request) bool { return true }
	// Frames, not messages: the caller reassembles, so a text frame is seen
	// (and refused) before nbio would judge its UTF-8, and the size cap of
	// a fragmented message is the caller's.
	u.OnDataFrame(func(ws *websocket.Conn, mt websocket.MessageType, fin bool, data []byte) {
		c := sessionOf(ws)
		if c == nil || c.closing.Load() {
			return
		}
		c.touch()
		c.handler.OnFrame(c, mt == websocket.BinaryMessage, fin, data)
	})
	u.SetPingHandler(func(ws *websocket.Conn, data string) {
		if c := sessionOf(ws); c != nil {
			c.touch()
		}
		_ = ws.WriteMessage(websocket.PongMessage, []byte(data))
	})
	u.SetPongHandler(func(ws *websocket.Conn, _ string) {
		if c := sessionOf(ws); c != nil {
			c.touch()
		}
	})
	u.SetCloseHandler(func(ws *websocket.Conn, code int, reason string) {
		c := sessionOf(ws)
		if c != nil && c.closing.Load() {
			return // the peer answered our close; nbio closes the socket next
		}
		// Echo the peer's close as RFC 6455 asks; nbio then closes the socket.
		if code == 1005 {
			_ = ws.WriteMessage(websocket.CloseMessage, nil)
			return
		}
		_ = ws.WriteClose(code, "")
	})
	u.OnClose(func(ws *websocket.Conn, err error) {
		if c := sessionOf(ws); c != nil {
			c.closing.Store(true)
			c.handler.OnClose(c, err)
		}
	})
	return u
}

// underlying finds the nbio connection under an upgraded one; nbhttp may
// wrap it once.
func underlying(ws *websocket.Conn) (*nbio.Conn, bool) {
	switch c := ws.UnderlayerConn().(type) {
	case *nbio.Conn:
		return c, true
	case *nbhttp.Conn:
		nb, ok := c.Conn.(*nbio.Conn)
		return nb, ok
	}
	return nil, false
}

func sessionOf(ws *websocket.Conn) *Conn {
	c, _ := ws.Session().(*Conn)
	return c
}

// onWritten runs under nbio's connection lock whenever bytes reach the
// socket, and keeps Pending exact for frames written through Conn.
func onWritten(nb *nbio.Conn, _ []byte, n int) {
	ws, ok := nb.Session().(*websocket.Conn)
	if !ok {
		return // still plain HTTP
	}
	c := sessionOf(ws)
	if c == nil {
		return
	}
	// Control frames nbio writes itself (pongs, close echoes) were never
	// counted, so clamp at zero rather than go negative.
	for {
		old := c.pending.Load()
		next := old - int64(n)
		if next < 0 {
			next = 0
		}
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

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nb.RemoteAddr() }

// WriteFrame writes a frame built by PrepareFrame. It never blocks: what the
// socket cannot take now is buffered and shows in Pending.
func (c *Conn) WriteFrame(frame []byte) error {
	if c.closing.Load() {
		return ErrClosed
	}
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
	if len(reason) > 123 {
		reason = reason[:123] // a close frame's payload is at most 125 bytes
	}
	payload := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(payload, uint16(code))
	copy(payload[2:], reason)
	if err := c.ws.WriteMessage(websocket.CloseMessage, payload); err != nil {
		_ = c.nb.Close()
		return
	}
	c.srv.AfterFunc(c.srv.cfg.CloseGrace, func() { _ = c.nb.Close() })
}

// Abort closes the socket at once, without a closing handshake.
func (c *Conn) Abort() { _ = c.nb.Close() }
