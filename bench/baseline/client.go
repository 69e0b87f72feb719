package baseline

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relay-dev/relay/codec"
)

// Close codes of PROTOCOL.md that this package sends itself (gorilla sends
// 1009 on its own).
const (
	closeGoingAway      = websocket.CloseGoingAway               // 1001: shutdown, idle timeout
	closeUnsupported    = websocket.CloseUnsupportedData         // 1003: text frame
	closeInvalidPayload = websocket.CloseInvalidFramePayloadData // 1007: malformed message
	closeTryAgainLater  = websocket.CloseTryAgainLater           // 1013: slow consumer
)

// client is one WebSocket connection with its read and write goroutines.
// Only the write goroutine writes data frames; close frames are written by
// it too, after close asks for one.
type client struct {
	srv  *Server
	ws   *websocket.Conn
	user string
	ev   *event // set by hub.join before the goroutines start

	send     chan []byte   // frames for the write goroutine, bounded
	quit     chan struct{} // closed by close
	readDone chan struct{} // closed when the read goroutine ends

	closing     atomic.Bool
	closeCode   int // written once, before quit is closed
	closeReason string
}

// close asks the write goroutine to send a close frame with code and reason
// (no frame if code is 0) and end. Only the first call counts; it reports
// whether it was this one. Safe from any goroutine.
func (c *client) close(code int, reason string) bool {
	if !c.closing.CompareAndSwap(false, true) {
		return false
	}
	c.closeCode, c.closeReason = code, reason
	close(c.quit)
	return true
}

// queue hands frame to the write goroutine without blocking; a connection
// whose queue is full is dropped as a slow consumer.
func (c *client) queue(frame []byte) {
	if c.closing.Load() {
		return
	}
	select {
	case c.send <- frame:
	default:
		if c.close(closeTryAgainLater, "slow consumer: send queue full") {
			c.srv.slowConsumers.Add(1)
		}
	}
}

// readPump reads client messages until the connection fails or closes, then
// leaves the event.
func (c *client) readPump() {
	defer func() {
		c.srv.hub.leave(c)
		c.srv.unregister(c)
		c.close(0, "")
		close(c.readDone)
	}()
	c.ws.SetReadLimit(maxMessageSize)
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.closing.Load() {
			continue // our close frame is out; wait for the client's reply
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		c.handle(mt, data)
	}
}

// handle relays one client message as its own frame, or closes the
// connection if the message breaks the protocol.
func (c *client) handle(mt int, data []byte) {
	if mt != websocket.BinaryMessage {
		c.close(closeUnsupported, "text frames are not accepted: send binary MessagePack")
		return
	}
	var m codec.Message
	if err := codec.Decode(data, &m); err != nil {
		c.close(closeInvalidPayload, err.Error())
		return
	}
	c.srv.messagesIn.Add(1)
	var b codec.Batch
	switch m.Kind {
	case codec.KindCursor:
		b.Cursors = []codec.Cursor{{User: c.user, X: m.X, Y: m.Y}}
	case codec.KindAction:
		b.Actions = []codec.Action{{User: c.user, Data: m.Data}}
	}
	c.ev.emit(&b)
}

// readFailed closes with 1001 on the idle timeout. Other read errors need no
// close frame: the client closed (gorilla has echoed its close frame), the
// message was too big (gorilla has sent 1009), or the socket is gone.
func (c *client) readFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.close(closeGoingAway, "idle timeout")
		return
	}
	if websocket.IsUnexpectedCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) &&
		!c.closing.Load() {
		c.srv.log.Debug("connection lost", "user", c.user, "event", c.ev.id, "err", err)
	}
}

// writePump writes queued frames and pings until close is called or a write
// fails, then closes the socket.
func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		_ = c.ws.Close()
	}()
	for {
		select {
		case frame := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				c.close(0, "")
				return
			}
			c.srv.framesOut.Add(1)
		case <-ticker.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				c.close(0, "")
				return
			}
		case <-c.quit:
			c.sendClose()
			return
		}
	}
}

// sendClose writes the close frame close asked for, if any, and gives the
// client closeGrace to answer before the socket is closed, so that it gets
// to read the reason.
func (c *client) sendClose() {
	if c.closeCode == 0 {
		return
	}
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
	if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.srv.cfg.WriteTimeout)) != nil {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}
