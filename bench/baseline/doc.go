/*
Package baseline is the relay most people would write without this project:
the naive design, kept for side-by-side benchmarks only. It is not for
production and nothing else in the module depends on it.

It speaks the same wire protocol as the real node (PROTOCOL.md version 1,
open mode only), so the same load generator drives both, but it is built the
way the gorilla/websocket chat example teaches:

  - one read goroutine and one write goroutine per connection
    (github.com/gorilla/websocket v1.5.3, net/http);
  - a buffered send channel per connection (Config.SendQueue, default 256);
    a connection whose channel is full is dropped (close 1013), as the chat
    example's hub drops a client it cannot send to;
  - write deadlines, and ping/pong keepalive from a ticker in the write
    goroutine (ping every 25 s, read deadline 60 s, extended by every pong
    and every message);
  - one map of events behind one mutex, and a mutex per event;
  - no batching: every update (cursor, action, join, leave) is encoded at
    once as its own batch frame with exactly one entry and written to every
    member of the event. seq still counts frames per event per node, so
    clients see the same stream shape; there are simply many more frames.

With Config.AMQPURL set it joins a cluster the naive way: every update is
published as its own broker message, through bridge.AMQP, so the exchange,
queues and bindings are exactly the real node's and a comparison isolates
batching and the connection model. Deliveries from other nodes are written
unchanged to the local members of their event.

It reuses codec for decoding client messages and encoding frames, so the
bytes on the wire match the real node's.

Left out, on purpose or for brevity: token mode, origin checks (any origin is
accepted, the protocol's default), the connection limit (no 503), the
per-connection rate limit (no 1008) and the close handshake timing of the
real node. A message over 4096 bytes is refused by gorilla itself with 1009
and an empty reason.

# Goroutines

Server owns every goroutine it starts: the HTTP server's accept loop and two
per connection. Shutdown stops accepting, asks every connection to close
with 1001, waits for both goroutines of each (up to its context, then cuts
the sockets), and closes the bridge. With a broker, bridge.AMQP adds its own
goroutines per subscribed event (see bridge's doc).

# Locks

Order: hub.mu, then event.mu, then bridge.AMQP's own lock (inside
Subscribe, Unsubscribe and Publish, which never block on the network).
Bridge deliveries take event.mu while the bridge holds its per-subscription
lock, which the bridge orders before its own. Server.mu guards only the set
of connections and is never held with the others. No lock is held across a
socket write: writers are fed through channels with non-blocking sends.
*/
package baseline
