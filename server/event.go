package server

import (
	"sync"

	"github.com/relay-dev/relay/codec"
)

// event is one event's state on this node.
type event struct {
	id     string
	worker *worker

	mu sync.Mutex
	// Guarded by mu.
	users   map[string]int // user -> open connections on this node
	conns   int
	pend    *pending // updates since the last flush
	adds    []*session
	removes []*session
	armed   bool // a flush or a follow-up is queued at the worker
	retired bool // removed from the registry; a new event takes its ID

	// Owned by the worker goroutine.
	members []*session
	seq     uint64
	spare   *pending
}

func newEvent(id string, w *worker) *event {
	return &event{
		id:     id,
		worker: w,
		users:  make(map[string]int),
		pend:   newPending(),
		spare:  newPending(),
	}
}

// pending is what one batch will say. It is reused from tick to tick.
type pending struct {
	cursors  []codec.Cursor
	curIndex map[string]int // user -> index in cursors
	acts     []actRef
	actBytes []byte // the actions' bytes, back to back
	presence []presenceChange
	presIdx  map[string]int
}

type actRef struct {
	user     string
	from, to int // in actBytes
}

type presenceChange struct {
	user  string
	delta int // +1 joined, -1 left, 0 both within the tick
}

func newPending() *pending {
	return &pending{curIndex: make(map[string]int), presIdx: make(map[string]int)}
}

func (p *pending) empty() bool {
	if len(p.cursors) > 0 || len(p.acts) > 0 {
		return false
	}
	for _, c := range p.presence {
		if c.delta != 0 {
			return false
		}
	}
	return true
}

func (p *pending) reset() {
	p.cursors = p.cursors[:0]
	clear(p.curIndex)
	p.acts = p.acts[:0]
	p.actBytes = p.actBytes[:0]
	p.presence = p.presence[:0]
	clear(p.presIdx)
}

func (p *pending) cursor(user string, x, y float64) {
	if i, ok := p.curIndex[user]; ok {
		p.cursors[i].X, p.cursors[i].Y = x, y
		return
	}
	p.curIndex[user] = len(p.cursors)
	p.cursors = append(p.cursors, codec.Cursor{User: user, X: x, Y: y})
}

func (p *pending) action(user string, data []byte) {
	from := len(p.actBytes)
	p.actBytes = append(p.actBytes, data...)
	p.acts = append(p.acts, actRef{user: user, from: from, to: len(p.actBytes)})
}

func (p *pending) presenceDelta(user string, delta int) {
	if i, ok := p.presIdx[user]; ok {
		p.presence[i].delta += delta
		return
	}
	p.presIdx[user] = len(p.presence)
	p.presence = append(p.presence, presenceChange{user: user, delta: delta})
}

// fill writes p into b, reusing b's slices.
func (p *pending) fill(b *codec.Batch) {
	b.Cursors = append(b.Cursors[:0], p.cursors...)
	b.Actions = b.Actions[:0]
	for _, a := range p.acts {
		b.Actions = append(b.Actions, codec.Action{User: a.user, Data: p.actBytes[a.from:a.to:a.to]})
	}
	b.Joins, b.Leaves = b.Joins[:0], b.Leaves[:0]
	for _, c := range p.presence {
		switch {
		case c.delta > 0:
			b.Joins = append(b.Joins, c.user)
		case c.delta < 0:
			b.Leaves = append(b.Leaves, c.user)
		}
	}
}

// touchLocked asks the worker for a flush unless one is already coming.
// Called with e.mu held.
func (e *event) touchLocked() {
	if e.armed {
		return
	}
	e.armed = true
	e.worker.ready(e)
}

// cursor records a user's latest position for the next batch.
func (e *event) cursor(user string, x, y float64) {
	e.mu.Lock()
	e.pend.cursor(user, x, y)
	e.touchLocked()
	e.mu.Unlock()
}

// action queues an action, copying data, for the next batch.
func (e *event) action(user string, data []byte) {
	e.mu.Lock()
	e.pend.action(user, data)
	e.touchLocked()
	e.mu.Unlock()
}

// joinLocked adds s and reports the users present, s's user included.
// Called with e.mu held (and the registry shard's lock).
func (e *event) joinLocked(s *session) []string {
	e.conns++
	e.users[s.user]++
	if e.users[s.user] == 1 {
		e.pend.presenceDelta(s.user, +1)
	}
	e.adds = append(e.adds, s)
	e.touchLocked()
	members := make([]string, 0, len(e.users))
	for u := range e.users {
		members = append(members, u)
	}
	return members
}

// leave removes s; the user leaves with their last connection.
func (e *event) leave(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conns--
	e.users[s.user]--
	if e.users[s.user] == 0 {
		delete(e.users, s.user)
		e.pend.presenceDelta(s.user, -1)
	}
	e.removes = append(e.removes, s)
	e.touchLocked()
}
