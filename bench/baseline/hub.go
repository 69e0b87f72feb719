package baseline

import (
	"slices"
	"sync"
	"time"

	"github.com/relay-dev/relay/codec"
)

// hub is every event that has members on this node.
type hub struct {
	mu     sync.Mutex
	events map[string]*event // guarded by mu
}

// event is one event's local members and its frame sequence. Every update
// is encoded and written to the members under mu, so seq order is the order
// in which every member receives frames.
type event struct {
	id  string
	srv *Server

	mu      sync.Mutex           // guards the fields below
	members map[*client]struct{} // local connections
	users   map[string]int       // local connections per user (presence)
	seq     uint64               // last seq sent; 0 again when the event empties
	enc     codec.Encoder
}

// join adds c to the event id, creating (and, in a cluster, subscribing) the
// event if c is its first local member. It queues the welcome, then a join
// frame if c is its user's first connection.
func (h *hub) join(s *Server, id string, c *client) {
	h.mu.Lock()
	ev := h.events[id]
	if ev == nil {
		ev = &event{id: id, srv: s, members: make(map[*client]struct{}), users: make(map[string]int)}
		h.events[id] = ev
		s.events.Add(1)
		if s.bridge != nil {
			s.bridge.Subscribe(id, ev.deliver)
		}
	}
	ev.mu.Lock()
	h.mu.Unlock()
	defer ev.mu.Unlock()

	c.ev = ev
	ev.members[c] = struct{}{}
	ev.users[c.user]++
	members := make([]string, 0, len(ev.users))
	for u := range ev.users {
		members = append(members, u)
	}
	slices.Sort(members)
	c.queue(ev.enc.AppendWelcome(nil, c.user, id, s.cfg.Node, members))
	if ev.users[c.user] == 1 {
		ev.emitLocked(&codec.Batch{Joins: []string{c.user}})
	}
}

// leave removes c from its event, sends a leave frame if c was its user's
// last connection, and drops the event (and its broker queue) if it has no
// local members left.
func (h *hub) leave(c *client) {
	ev := c.ev
	ev.mu.Lock()
	delete(ev.members, c)
	if ev.users[c.user]--; ev.users[c.user] == 0 {
		delete(ev.users, c.user)
		ev.emitLocked(&codec.Batch{Leaves: []string{c.user}})
	}
	empty := len(ev.members) == 0
	if empty {
		ev.seq = 0 // a new stream if the event fills again
	}
	ev.mu.Unlock()
	if !empty {
		return
	}
	// Lock order is hub, then event: look again with both held, since a
	// join may have refilled the event in between.
	h.mu.Lock()
	defer h.mu.Unlock()
	ev.mu.Lock()
	empty = len(ev.members) == 0
	ev.mu.Unlock()
	if empty && h.events[ev.id] == ev {
		delete(h.events, ev.id)
		ev.srv.events.Add(-1)
		if ev.srv.bridge != nil {
			ev.srv.bridge.Unsubscribe(ev.id)
		}
	}
}

// emit sends one update as its own frame.
func (ev *event) emit(b *codec.Batch) {
	ev.mu.Lock()
	ev.emitLocked(b)
	ev.mu.Unlock()
}

// emitLocked stamps b with the next seq, encodes it, queues it to every
// local member and publishes it to other nodes. ev.mu must be held.
func (ev *event) emitLocked(b *codec.Batch) {
	ev.seq++
	b.Node, b.Seq, b.TS = ev.srv.cfg.Node, ev.seq, time.Now().UnixMilli()
	frame := ev.enc.AppendBatch(nil, b) // a new slice: members and the bridge share it
	ev.writeLocked(frame)
	if ev.srv.bridge != nil {
		ev.srv.bridge.Publish(ev.id, frame)
	}
}

// deliver writes another node's frame, unchanged, to the local members. The
// bridge calls it from its reader goroutine.
func (ev *event) deliver(body []byte) {
	ev.mu.Lock()
	ev.writeLocked(body)
	ev.mu.Unlock()
}

// writeLocked queues frame to every member. ev.mu must be held.
func (ev *event) writeLocked(frame []byte) {
	for c := range ev.members {
		c.queue(frame)
	}
}
