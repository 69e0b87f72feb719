package loadgen

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// socket is what a connection needs from its transport: *nbio.Conn, whose
// Write never blocks and is safe for concurrent use; tests use a fake.
type socket interface {
	Write(b []byte) (int, error)
	Close() error
}

// Connection states.
const (
	stNew     = iota // handshake done, no welcome yet
	stUp             // welcomed
	stClosing        // we sent a close frame: the end is not a drop
	stGone           // closed; counted
)

// conn is one simulated member. It holds no goroutine and no buffer while
// idle: a frame that arrives in pieces borrows one until it is whole.
type conn struct {
	sock  socket
	sh    *shard
	user  string
	owed  uint64 // deliveries each of its actions is owed: its event's size - 1
	state atomic.Uint32

	// Guarded by sh.mu.
	node     string             // the node that welcomed us
	rd       frameReader        // an incomplete frame, if any
	last     map[string]*uint64 // per sender: last action seq seen; nil until an action arrives
	welcomed bool
	dropped  bool // a drop cause has been counted
	live     bool // registered with the engine: it may write, and ends in onClose
	closeNow bool // a frame asked to close before the conn was live
}

// shard is the receive state of one event loop: the connections whose file
// descriptor hashes to that loop share it, so its lock is almost never
// contended, and the phase statistics need no atomics. Dialers (for bytes
// that came with the handshake), the status reporter and phase commands take
// the lock briefly.
type shard struct {
	t *tally

	mu sync.Mutex // guards everything below and the guarded fields of its conns

	c   *conn // the connection being read
	now int64 // when its bytes were read, Unix nanoseconds

	tag  uint32      // the phase ph belongs to
	open bool        // ph is counting
	ph   *phaseStats // this shard's part of phase tag

	framesIn, bytesIn uint64 // totals since start
	badFrames         uint64
	unexpected        uint64 // fragments and text frames, which the relay never sends
	foreignActions    uint64 // action values that are not our stamps

	nodes map[string]string // interned node IDs
}

func newShard(t *tally) *shard {
	return &shard{t: t, ph: newPhaseStats(), nodes: make(map[string]string)}
}

// begin starts (or, if entries of it already started it, continues) the
// phase tag. Call with mu held.
func (sh *shard) begin(tag uint32) {
	if sh.tag != tag {
		sh.ph.reset()
		sh.tag = tag
	}
	sh.open = true
}

// receive handles bytes read from c at now. Call with mu held.
func (sh *shard) receive(c *conn, data []byte, now int64) {
	if c.state.Load() == stGone {
		return
	}
	sh.c, sh.now = c, now
	if err := c.rd.feed(data, sh); err != nil {
		sh.badFrames++
		sh.drop(c, "bad-frame")
		sh.closeSocket(c)
	}
	sh.c = nil
}

// onFrame handles one frame of sh.c.
func (sh *shard) onFrame(f frame) bool {
	c := sh.c
	sh.framesIn++
	sh.bytesIn += uint64(len(f.payload))
	if sh.open {
		sh.ph.framesIn++
		sh.ph.bytesIn += uint64(len(f.payload))
	}
	switch f.op {
	case opBinary:
		if !f.fin {
			sh.unexpected++ // the relay never fragments; skip rather than reassemble
			return true
		}
		sh.message(c, f.payload)
	case opCont, opText:
		sh.unexpected++ // nor sends text
	case opPing:
		if c.live {
			var buf [clientHeadroom + 125]byte
			_, _ = c.sock.Write(controlFrame(&buf, opPong, f.payload))
		}
	case opClose:
		if c.state.Load() != stClosing {
			code := closeCode(f.payload)
			sh.drop(c, "close-"+strconv.Itoa(code))
			if c.live {
				var buf [clientHeadroom + 125]byte
				_, _ = c.sock.Write(controlFrame(&buf, opClose, f.payload[:min(len(f.payload), 2)]))
			}
		}
		sh.closeSocket(c)
		return false
	}
	return true
}

// closeSocket closes c's socket now, or right after registration if it is
// not live yet.
func (sh *shard) closeSocket(c *conn) {
	if c.live {
		_ = c.sock.Close()
		return
	}
	c.closeNow = true
}

// drop counts why c ended, once.
func (sh *shard) drop(c *conn, cause string) {
	if !c.dropped && c.state.Load() != stClosing {
		c.dropped = true
		sh.t.dropped.add(cause)
	}
}

// gone accounts for c's end, once. Call with mu held.
func (sh *shard) gone(c *conn, err error) {
	prev := c.state.Swap(stGone)
	if prev == stGone {
		return
	}
	if c.welcomed {
		sh.t.up.Add(-1)
	}
	if prev != stClosing {
		sh.drop(c, dropCause(err))
	}
	c.rd.release()
	c.last = nil
	if c.live {
		sh.t.open.Add(-1)
	}
}

// message handles one server message.
func (sh *shard) message(c *conn, payload []byte) {
	var m message
	var v entryVisitor
	if c.welcomed {
		v = sh
	}
	if err := walkMessage(payload, &m, v); err != nil {
		sh.badFrames++
		return
	}
	if m.bad {
		sh.badFrames++
	}
	if !c.welcomed {
		if m.kind == kindWelcome {
			c.welcomed = true
			c.node = sh.intern(m.node)
			c.state.CompareAndSwap(stNew, stUp)
			sh.t.up.Add(1)
		}
		return
	}
	// Only batches built on this member's own node measure the worker's
	// lag: a batch from another node also carries the broker's delay.
	if m.kind == kindBatch && sh.open && string(m.node) == c.node {
		record(sh.ph.lag, sh.now/1e3-m.ts*1e3)
	}
}

// visitCursor records the latency of a cursor entry from another member.
func (sh *shard) visitCursor(node, user []byte, x, _ float64) {
	c := sh.c
	if !sh.open || string(user) == c.user {
		return
	}
	sh.ph.cursorsReceived++
	lat := int64(float64(sh.now)/1e3 - x*1e3) // x is the send time in Unix ms
	if string(node) == c.node {
		record(sh.ph.cursorSame, lat)
	} else {
		record(sh.ph.cursorCross, lat)
	}
}

// visitAction accounts for an action entry from another member.
func (sh *shard) visitAction(node, user, d []byte) {
	c := sh.c
	if string(user) == c.user {
		return
	}
	sentNS, seq, ok := readStamp(d)
	if !ok {
		sh.foreignActions++
		return
	}
	sh.account(c, user, sentNS, seq, string(node) == c.node)
}

// account checks one action from another member for exactly-once delivery.
//
// seq is phase<<32 | n, where phase counts "phase" commands (the same on
// every worker) and n counts the sender's actions in that phase from 1. A
// higher phase starts a new stream whose first expected n is 1, so a
// receiver never confuses the end of one phase with the start of the next,
// and an entry of a phase that has not started here yet (another worker got
// its "phase" command first) starts this shard's phase early instead of
// being lost or leaving a false gap.
func (sh *shard) account(c *conn, user []byte, sentNS int64, seq uint64, same bool) {
	tag := uint32(seq >> 32)
	if !sh.open && tag == sh.tag+1 {
		sh.begin(tag)
	}
	if c.last == nil {
		c.last = make(map[string]*uint64, 4)
	}
	last := c.last[string(user)]
	if last == nil {
		last = new(uint64)
		c.last[string(user)] = last
	}
	base := *last
	switch lastTag := uint32(base >> 32); {
	case tag < lastTag:
		return // a straggler from an earlier phase
	case tag > lastTag:
		base = uint64(tag) << 32
		*last = base
	}
	counting := sh.open && tag == sh.tag
	switch {
	case seq <= base:
		if counting {
			sh.ph.duplicates++
		}
		return
	case seq > base+1:
		if counting {
			sh.ph.gaps += seq - base - 1
		}
	}
	*last = seq
	if !counting {
		return
	}
	sh.ph.actionsReceived++
	lat := (sh.now - sentNS) / 1e3
	if same {
		record(sh.ph.actionSame, lat)
	} else {
		record(sh.ph.actionCross, lat)
	}
}

// intern returns node as a string shared by every connection of the shard.
func (sh *shard) intern(node []byte) string {
	if s, ok := sh.nodes[string(node)]; ok {
		return s
	}
	s := string(node)
	sh.nodes[s] = s
	return s
}

// dropCause names why a socket ended without a close frame.
func dropCause(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.ETIMEDOUT):
		return "timeout"
	}
	return "other"
}
