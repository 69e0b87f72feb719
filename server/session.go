package server

import (
	"fmt"
	"time"

	"github.com/relay-dev/relay/codec"
	"github.com/relay-dev/relay/poller"
)

// Conn is what a session needs from its connection; poller.Conn is the real
// one, tests may use another.
type Conn interface {
	WriteFrame(frame []byte) error
	Pending() int
	Ping() error
	CloseWith(code int, reason string)
	LastRead() time.Time
}

var _ Conn = (*poller.Conn)(nil)

// session is one member's connection to one event.
type session struct {
	srv     *Server
	conn    Conn
	user    string
	eventID string
	event   *event
	expires time.Time // token expiry; zero in open mode

	// Owned by the connection's event loop.
	frag      []byte // a fragmented message being reassembled
	fragments int    // frames in it so far
	limiter   tokenBucket

	// Owned by the event's worker.
	index int

	// Owned by the liveness sweeper.
	lastPing time.Time
	shard    int // in Server.sessions
}

// welcome writes the first frame. Called with the event locked.
func (s *session) welcome(members []string) {
	var enc codec.Encoder
	buf := make([]byte, poller.MaxHeaderLen, poller.MaxHeaderLen+64+len(s.user)+len(s.eventID)+16*len(members))
	buf = enc.AppendWelcome(buf, s.user, s.eventID, s.srv.cfg.Node, members)
	_ = s.conn.WriteFrame(poller.PrepareFrame(buf))
}

// maxFragments is the most frames one client message may come in.
const maxFragments = 64

// OnFrame handles one data frame. It runs on the connection's event loop.
func (s *session) OnFrame(c *poller.Conn, binary, fin bool, data []byte) {
	if !binary {
		s.close(CloseUnsupported, "text frames are not accepted: send MessagePack in binary frames")
		return
	}
	max := s.srv.cfg.MaxMessage
	if !fin || s.frag != nil {
		if len(s.frag)+len(data) > max {
			s.close(CloseTooBig, fmt.Sprintf("message over %d bytes", max))
			return
		}
		// Empty fragments cost nothing against the size cap; without a
		// count a client could keep one message open forever.
		if s.fragments++; s.fragments > maxFragments {
			s.close(ClosePolicyViolation, fmt.Sprintf("message in more than %d fragments", maxFragments))
			return
		}
		s.frag = append(s.frag, data...)
		if !fin {
			return
		}
		data, s.frag = s.frag, nil
	}
	s.fragments = 0
	s.handleMessage(data, time.Now())
}

// handleMessage applies one complete client message.
func (s *session) handleMessage(data []byte, now time.Time) {
	if len(data) == 0 {
		s.close(CloseInvalidPayload, "empty message: send one MessagePack map")
		return
	}
	if !s.limiter.allow(now, s.srv.cfg.RateLimit, s.srv.cfg.RateBurst) {
		s.close(ClosePolicyViolation, fmt.Sprintf("rate limit: more than %g messages/s", s.srv.cfg.RateLimit))
		return
	}
	var m codec.Message
	if err := codec.Decode(data, &m); err != nil {
		s.close(CloseInvalidPayload, err.Error())
		return
	}
	s.srv.stats.messagesIn.Add(1)
	switch m.Kind {
	case codec.KindCursor:
		s.event.cursor(s.user, m.X, m.Y)
	case codec.KindAction:
		s.event.action(s.user, m.Data)
	}
}

// OnClose runs once when the connection is gone.
func (s *session) OnClose(c *poller.Conn, err error) {
	s.srv.sessions.remove(s)
	if s.event != nil {
		s.event.leave(s)
	}
	s.srv.conns.Add(-1)
}

func (s *session) close(code int, reason string) {
	s.conn.CloseWith(code, reason)
}

// tokenBucket is a per-connection rate limiter: rate tokens per second,
// up to burst saved.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) allow(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens += now.Sub(b.last).Seconds() * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
