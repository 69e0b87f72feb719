//go:build race

package poller

import (
	"sync/atomic"

	"github.com/lesismal/nbio"
)

// nbio hands each accepted socket from the listener goroutine to an event
// loop through epoll, a synchronisation the race detector cannot see, so it
// reports the loop's first reads of what the listener wrote as races. In
// race builds only, an atomic counter makes the hand-off visible: it is
// stored just before the socket is registered with epoll and loaded before
// each read is handled.
var handoff atomic.Uint64

func (s *Server) markHandoff() {
	s.engine.Engine.OnOpen(func(*nbio.Conn) { handoff.Add(1) })
	s.engine.Engine.OnData(func(c *nbio.Conn, data []byte) {
		handoff.Load()
		c.DataHandler()(c, data)
	})
}
