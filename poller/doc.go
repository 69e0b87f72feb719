// Package poller owns the network edge of a relay node: the nbio event
// loops (epoll on Linux), the HTTP listener, the WebSocket upgrade and the
// framing of RFC 6455 (server side). It is the only package that knows nbio.
//
// Concurrency rules:
//
//   - Handler callbacks (OnFrame, OnClose) run on the event loop that owns the
//     connection, one at a time per connection and in the order the bytes
//     arrived. They must not block: a blocked callback stalls every other
//     connection of that loop. HTTP handlers run on the event loops too.
//   - Conn's write and close methods are safe to call from any goroutine.
//     Writes never block: what the socket does not take at once is buffered
//     by nbio and counted in Pending, so callers can enforce their own cap.
//   - No goroutine is started per connection or per message: goroutines are
//     the fixed set of event loops, the listener, nbio's timer and one
//     goroutine that clears handshake deadlines (Server.clearAgain); Start
//     starts them and Shutdown stops them.
package poller
