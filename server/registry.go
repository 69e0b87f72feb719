package server

import (
	"hash/maphash"
	"sync"
)

const registryShards = 64

// registry maps event IDs to the events that have members on this node. It
// is sharded because every join and leave goes through it.
type registry struct {
	srv    *Server
	seed   maphash.Seed
	shards [registryShards]registryShard
}

type registryShard struct {
	mu     sync.Mutex
	events map[string]*event
}

func newRegistry(srv *Server) *registry {
	r := &registry{srv: srv, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].events = make(map[string]*event)
	}
	return r
}

func (r *registry) hash(id string) uint64 { return maphash.String(r.seed, id) }

// join adds s to its event, creating the event (and its bridge
// subscription) at the first local member, and writes s's welcome while the
// event is locked, so that no batch can reach s before it.
func (r *registry) join(s *session) {
	h := r.hash(s.eventID)
	sh := &r.shards[h%registryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.events[s.eventID]
	if e == nil {
		e = newEvent(s.eventID, r.srv.workers[h%uint64(len(r.srv.workers))])
		sh.events[s.eventID] = e
		r.srv.stats.events.Add(1)
		if br := r.srv.cfg.Bridge; br != nil {
			br.Subscribe(e.id, func(body []byte) { e.worker.deliver(e, body) })
		}
	}
	s.event = e
	e.mu.Lock()
	members := e.joinLocked(s)
	s.welcome(members)
	e.mu.Unlock()
}

// retire removes e once it has no members and nothing to send, and ends its
// bridge subscription. A join that raced ahead keeps it alive.
func (r *registry) retire(e *event) {
	sh := &r.shards[r.hash(e.id)%registryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e.mu.Lock()
	idle := e.conns == 0 && !e.armed && !e.retired
	if idle {
		e.retired = true
	}
	e.mu.Unlock()
	if !idle || sh.events[e.id] != e {
		return
	}
	delete(sh.events, e.id)
	r.srv.stats.events.Add(-1)
	if br := r.srv.cfg.Bridge; br != nil {
		br.Unsubscribe(e.id)
	}
}
