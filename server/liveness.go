package server

import (
	"sync"
	"sync/atomic"
	"time"
)

const sessionShards = 64

// sessionSet holds every open session, for the liveness sweep and for
// shutdown. Sharded so that connects and disconnects rarely contend.
type sessionSet struct {
	shards [sessionShards]struct {
		mu  sync.Mutex
		set map[*session]struct{}
	}
	next atomic.Uint64 // round-robin shard for the next session
}

func newSessionSet() *sessionSet {
	ss := &sessionSet{}
	for i := range ss.shards {
		ss.shards[i].set = make(map[*session]struct{})
	}
	return ss
}

func (ss *sessionSet) add(s *session) {
	i := (ss.next.Add(1) - 1) % sessionShards
	s.shard = int(i)
	sh := &ss.shards[i]
	sh.mu.Lock()
	sh.set[s] = struct{}{}
	sh.mu.Unlock()
}

func (ss *sessionSet) remove(s *session) {
	sh := &ss.shards[s.shard]
	sh.mu.Lock()
	delete(sh.set, s)
	sh.mu.Unlock()
}

// each calls f for every session of shard i, outside the shard's lock.
func (ss *sessionSet) each(i int, buf []*session, f func(*session)) []*session {
	sh := &ss.shards[i]
	sh.mu.Lock()
	buf = buf[:0]
	for s := range sh.set {
		buf = append(buf, s)
	}
	sh.mu.Unlock()
	for _, s := range buf {
		f(s)
	}
	clear(buf)
	return buf
}

// sweepEvery is how often the liveness sweep runs: a fraction of the
// shortest interval it enforces, so that pings and timeouts land close to
// their due time, and at least every second.
func sweepEvery(ping, idle time.Duration) time.Duration {
	d := min(ping, idle, 4*time.Second) / 4
	return max(d, 5*time.Millisecond)
}

// sweep runs the liveness rules over all sessions until stop is closed: ping
// the quiet, close the idle and the expired. One goroutine for the whole
// node instead of a timer per connection.
func (srv *Server) sweep(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery(srv.cfg.PingInterval, srv.cfg.IdleTimeout))
	defer t.Stop()
	var buf []*session
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			for i := 0; i < sessionShards; i++ {
				buf = srv.sessions.each(i, buf, func(s *session) { srv.checkLiveness(s, now) })
			}
		}
	}
}

func (srv *Server) checkLiveness(s *session, now time.Time) {
	quiet := now.Sub(s.conn.LastRead())
	switch {
	case !s.expires.IsZero() && now.After(s.expires.Add(clockSkew)):
		s.close(ClosePolicyViolation, "token expired: reconnect with a new token")
	case quiet >= srv.cfg.IdleTimeout:
		s.close(CloseGoingAway, "idle timeout: nothing received, pongs included")
	case quiet >= srv.cfg.PingInterval && now.Sub(s.lastPing) >= srv.cfg.PingInterval:
		s.lastPing = now
		_ = s.conn.Ping()
	}
}
