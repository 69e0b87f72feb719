package loadgen

import (
	"math/rand/v2"
	"time"

	"github.com/relay-dev/relay/codec"
)

// sendTick is the scheduler's resolution: a slot fires at most this late
// when the process keeps up.
const sendTick = time.Millisecond

// plan is one phase's sending: who sends what how often.
type plan struct {
	tag         uint32  // the phase, carried in every action's seq
	senders     []*conn // this worker's connections with rank < Senders
	cursorEvery int64   // nanoseconds between a sender's cursors; 0: none
	actionEvery int64   // nanoseconds between a sender's actions; 0: none
}

// sendCounts is what the scheduler did in one phase.
type sendCounts struct {
	cursors, actions, missed uint64
	expected                 uint64 // deliveries the actions are owed
}

// sender is one sending connection's schedule.
type sender struct {
	c       *conn
	nextCur int64 // Unix nanoseconds of the next cursor slot
	nextAct int64
	curSeq  uint64 // cursors sent this phase
	actSeq  uint64 // actions sent this phase
}

// scheduler is the one goroutine that sends for every sender of the worker.
// Each tick it visits the active senders (O(senders), no heap, no timer per
// connection) and sends what is due. A slot more than one period late is
// counted as missed and skipped, never sent in a burst to catch up.
type scheduler struct {
	t     *tally
	start chan plan
	stop  chan chan sendCounts

	// Owned by run.
	plan   plan
	active []sender
	counts sendCounts
	buf    []byte
}

func newScheduler(t *tally) *scheduler {
	return &scheduler{
		t:     t,
		start: make(chan plan),
		stop:  make(chan chan sendCounts),
		buf:   make([]byte, clientHeadroom, 256),
	}
}

// run sends until done is closed. The ticker runs only during a phase.
func (s *scheduler) run(done <-chan struct{}) {
	ticker := time.NewTicker(sendTick)
	ticker.Stop()
	defer ticker.Stop()
	var tick <-chan time.Time
	for {
		select {
		case <-done:
			return
		case p := <-s.start:
			s.begin(p, time.Now().UnixNano())
			ticker.Reset(sendTick)
			tick = ticker.C
		case reply := <-s.stop:
			ticker.Stop()
			tick = nil
			reply <- s.counts
			s.plan, s.active, s.counts = plan{}, s.active[:0], sendCounts{}
		case <-tick:
			s.tick(time.Now().UnixNano())
		}
	}
}

// begin sets up a phase. Each sender's first slots fall at a random point
// within one period, so that they do not all fire in the same tick.
func (s *scheduler) begin(p plan, now int64) {
	s.plan, s.counts = p, sendCounts{}
	s.active = s.active[:0]
	for _, c := range p.senders {
		sd := sender{c: c}
		if p.cursorEvery > 0 {
			sd.nextCur = now + rand.Int64N(p.cursorEvery)
		}
		if p.actionEvery > 0 {
			sd.nextAct = now + rand.Int64N(p.actionEvery)
		}
		s.active = append(s.active, sd)
	}
}

func (s *scheduler) tick(now int64) {
	for i := range s.active {
		sd := &s.active[i]
		if sd.c.state.Load() != stUp {
			continue
		}
		if s.plan.cursorEvery > 0 && s.due(&sd.nextCur, s.plan.cursorEvery, now) {
			s.sendCursor(sd)
		}
		if s.plan.actionEvery > 0 && s.due(&sd.nextAct, s.plan.actionEvery, now) {
			s.sendAction(sd)
		}
	}
}

// due reports whether the slot at *next has come, skipping (and counting)
// slots more than one period late, and moves *next on.
func (s *scheduler) due(next *int64, every, now int64) bool {
	if now < *next {
		return false
	}
	for now-*next > every {
		*next += every
		s.counts.missed++
		s.t.missedSlots.Add(1)
	}
	*next += every
	return true
}

// sendCursor sends {"t":"cur","x":SENT_MS,"y":SEQ}: x is the send time in
// Unix milliseconds with the sub-millisecond part as a fraction.
func (s *scheduler) sendCursor(sd *sender) {
	sent := time.Now().UnixNano()
	ms := float64(sent/1e6) + float64(sent%1e6)/1e6
	buf := codec.AppendCursor(s.buf[:clientHeadroom], ms, float64(sd.curSeq+1))
	s.buf = buf
	if _, err := sd.c.sock.Write(clientFrame(buf, opBinary)); err != nil {
		return // the connection is gone; its close is counted elsewhere
	}
	sd.curSeq++
	s.counts.cursors++
	s.t.cursorsSent.Add(1)
}

// sendAction sends {"t":"act","d":[SENT_NS, SEQ]} with SEQ = phase<<32 | n
// (see shard.account).
func (s *scheduler) sendAction(sd *sender) {
	var stamp [19]byte
	seq := uint64(s.plan.tag)<<32 | (sd.actSeq + 1)
	d := appendStamp(stamp[:0], time.Now().UnixNano(), seq)
	buf := codec.AppendAction(s.buf[:clientHeadroom], d)
	s.buf = buf
	if _, err := sd.c.sock.Write(clientFrame(buf, opBinary)); err != nil {
		return // not sent, so the seq is not used: no false gap
	}
	sd.actSeq++
	s.counts.actions++
	s.counts.expected += sd.c.owed
	s.t.actionsSent.Add(1)
}
