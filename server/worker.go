package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/codec"
	"github.com/relay-dev/relay/poller"
)

// maxInbox bounds the batches from other nodes waiting for one worker. Past
// it new ones are dropped: they carry cursor data that a later batch
// replaces, and a worker this far behind is better off catching up.
const maxInbox = 1 << 16

// worker flushes the batches of the events hashed to it and writes other
// nodes' batches to their local members. Each event belongs to one worker,
// which alone touches the event's members and seq.
//
// Leading and trailing edge: an event that has not flushed for a whole tick
// is flushed as soon as an update arrives (it is "ready"); every flush then
// schedules a follow-up one tick later that flushes whatever arrived in the
// meantime, or, if nothing did, disarms the event so that the next update
// is again sent at once.
type worker struct {
	srv *Server

	mu       sync.Mutex // guards readyQ and inbox
	readyQ   []*event
	inbox    []remoteBatch
	wake     chan struct{}
	dropped  atomic.Uint64 // remote batches dropped because inbox was full
	followUp []followUp    // owned by the worker goroutine; due times ascend

	enc   codec.Encoder
	batch codec.Batch
}

type remoteBatch struct {
	e    *event
	body []byte
}

type followUp struct {
	e   *event
	due time.Time
}

func newWorker(srv *Server) *worker {
	return &worker{srv: srv, wake: make(chan struct{}, 1)}
}

// ready queues e for an immediate flush. Called with e.mu held.
func (w *worker) ready(e *event) {
	w.mu.Lock()
	w.readyQ = append(w.readyQ, e)
	w.mu.Unlock()
	w.signal()
}

// deliver queues a batch from another node for e's local members. It is
// called by the bridge and never blocks.
func (w *worker) deliver(e *event, body []byte) {
	w.mu.Lock()
	if len(w.inbox) >= maxInbox {
		w.mu.Unlock()
		w.dropped.Add(1)
		return
	}
	w.inbox = append(w.inbox, remoteBatch{e, body})
	w.mu.Unlock()
	w.signal()
}

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run is the worker's loop; it returns when stop is closed.
func (w *worker) run(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*event
	var inbox []remoteBatch
	for {
		w.mu.Lock()
		ready, w.readyQ = w.readyQ, ready[:0]
		inbox, w.inbox = w.inbox, inbox[:0]
		w.mu.Unlock()

		for _, e := range ready {
			w.flush(e)
		}
		clear(ready)
		for _, rb := range inbox {
			w.writeRemote(rb)
		}
		clear(inbox)
		w.runFollowUps(time.Now())

		wait := time.Hour
		if len(w.followUp) > 0 {
			wait = time.Until(w.followUp[0].due)
		}
		timer.Reset(wait)
		select {
		case <-stop:
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

func (w *worker) runFollowUps(now time.Time) {
	n := 0
	for n < len(w.followUp) && !w.followUp[n].due.After(now) {
		n++
	}
	due := w.followUp[:n]
	w.followUp = w.followUp[n:]
	for i := range due {
		w.flush(due[i].e)
		due[i] = followUp{}
	}
	if len(w.followUp) == 0 {
		w.followUp = nil // let the backing array go
	}
}

// flush sends what e has pending, if anything, and schedules its follow-up.
func (w *worker) flush(e *event) {
	e.mu.Lock()
	if e.retired {
		e.mu.Unlock()
		return
	}
	adds, removes := e.adds, e.removes
	e.adds, e.removes = nil, nil
	nothing := e.pend.empty()
	var p *pending
	if nothing {
		e.pend.reset() // presence that netted to zero
		e.armed = false
	} else {
		p, e.pend = e.pend, e.spare
	}
	empty := e.conns == 0
	e.mu.Unlock()

	w.applyMembers(e, adds, removes)
	if !nothing {
		w.sendBatch(e, p)
		p.reset()
		e.spare = p
		w.followUp = append(w.followUp, followUp{e: e, due: time.Now().Add(w.srv.cfg.Tick)})
	}
	if empty && nothing {
		w.srv.registry.retire(e)
	}
}

// applyMembers updates the member list the worker writes to.
func (w *worker) applyMembers(e *event, adds, removes []*session) {
	for _, s := range adds {
		s.index = len(e.members)
		e.members = append(e.members, s)
	}
	for _, s := range removes {
		i := s.index
		if i < 0 || i >= len(e.members) || e.members[i] != s {
			continue
		}
		last := len(e.members) - 1
		e.members[i] = e.members[last]
		e.members[i].index = i
		e.members[last] = nil
		e.members = e.members[:last]
		s.index = -1
	}
}

// sendBatch encodes p once, writes the frame to every local member and
// publishes its payload to other nodes.
func (w *worker) sendBatch(e *event, p *pending) {
	e.seq++
	b := &w.batch
	b.Node = w.srv.cfg.Node
	b.Seq = e.seq
	b.TS = time.Now().UnixMilli()
	p.fill(b)
	// A fresh buffer per batch: the bridge keeps the payload until it is
	// published, and it costs one allocation per event per tick, never one
	// per member.
	buf := make([]byte, poller.MaxHeaderLen, poller.MaxHeaderLen+batchSizeHint(b, len(p.actBytes)))
	buf = w.enc.AppendBatch(buf, b)
	frame := poller.PrepareFrame(buf)
	w.srv.stats.batches.Add(1)
	w.writeAll(e, frame)
	if br := w.srv.cfg.Bridge; br != nil {
		br.Publish(e.id, poller.FramePayload(buf))
	}
}

// batchSizeHint is a close upper estimate of a batch's encoded size, so
// that encoding appends into one allocation.
func batchSizeHint(b *codec.Batch, actBytes int) int {
	n := 64 + len(b.Node) + actBytes
	for _, c := range b.Cursors {
		n += len(c.User) + 24 // array header, string header, two float64s
	}
	for _, a := range b.Actions {
		n += len(a.User) + 8
	}
	for _, u := range b.Joins {
		n += len(u) + 2
	}
	for _, u := range b.Leaves {
		n += len(u) + 2
	}
	return n
}

// writeRemote writes another node's batch to e's local members unchanged.
func (w *worker) writeRemote(rb remoteBatch) {
	e := rb.e
	e.mu.Lock()
	retired := e.retired
	adds, removes := e.adds, e.removes
	e.adds, e.removes = nil, nil
	e.mu.Unlock()
	if retired {
		return
	}
	w.applyMembers(e, adds, removes)
	buf := make([]byte, poller.MaxHeaderLen+len(rb.body))
	copy(buf[poller.MaxHeaderLen:], rb.body)
	w.srv.stats.remoteBatches.Add(1)
	w.writeAll(e, poller.PrepareFrame(buf))
}

// writeAll writes one frame to every member, closing the ones that fell too
// far behind.
func (w *worker) writeAll(e *event, frame []byte) {
	limit := w.srv.cfg.MaxPending
	var sent uint64
	for _, s := range e.members {
		// A reader that keeps up has next to nothing pending, however big
		// the frame; only output already waiting counts against the cap.
		if s.conn.Pending() > limit {
			s.conn.CloseWith(CloseTryAgainLater, "slow consumer: unsent output passed the per-connection cap")
			continue
		}
		if s.conn.WriteFrame(frame) == nil {
			sent++
		}
	}
	w.srv.stats.framesOut.Add(sent)
}
