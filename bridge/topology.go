package bridge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// topology is the state owned by the run goroutine.
type topology struct {
	b       *AMQP
	subs    map[string]*sub // applied subscriptions, by event
	s       *session        // nil while down
	retry   *time.Timer     // armed while down
	attempt int             // failed attempts since the last stable session
	down    bool            // an outage is logged and not yet over
	tags    uint64          // consumer tag sequence
}

// session is one connection with its two channels.
type session struct {
	conn    *amqp.Connection
	topo    *amqp.Channel // declares, binds, deletes and every consumer
	pub     *amqp.Channel // used by the publisher goroutine via AMQP.pubCh
	connErr chan *amqp.Error
	topoErr chan *amqp.Error
	pubErr  chan *amqp.Error
	since   time.Time
}

// run is the topology goroutine: it keeps the broker in line with the
// subscription table until Close.
func (b *AMQP) run() {
	defer b.wg.Done()
	t := &topology{b: b, subs: make(map[string]*sub), retry: time.NewTimer(0)}
	defer t.stop()
	for {
		var connErr, topoErr, pubErr chan *amqp.Error
		if t.s != nil {
			connErr, topoErr, pubErr = t.s.connErr, t.s.topoErr, t.s.pubErr
		}
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
			t.apply(b.takeCommands())
		case <-t.retry.C:
			t.connect()
		case e := <-connErr:
			t.lost(closeCause(e))
		case e := <-topoErr:
			t.reopenTopology(closeCause(e))
		case e := <-pubErr:
			t.reopenPublisher(closeCause(e))
		}
	}
}

// closeCause turns a NotifyClose value into an error; nil means the channel
// was closed without an exception.
func closeCause(e *amqp.Error) error {
	if e == nil {
		return amqp.ErrClosed
	}
	return e
}

// apply applies commands in order to the table and, when connected, to the
// broker. After a failed broker call the rest only update the table; the
// topology channel is then rebuilt from the table.
func (t *topology) apply(cmds []command) {
	var failed error
	for _, c := range cmds {
		s := c.sub
		if c.subscribe {
			t.subs[s.event] = s
			// An inactive sub was unsubscribed before we got here: its
			// unsubscribe command follows, so skip the round trip.
			if t.s != nil && failed == nil && s.active.Load() {
				failed = t.declare(s)
			}
			continue
		}
		if t.subs[s.event] == s {
			delete(t.subs, s.event)
		}
		if t.s != nil && failed == nil {
			failed = t.undeclare(s)
		}
	}
	if failed != nil {
		t.reopenTopology(failed)
	}
	t.b.applied(len(cmds))
}

// declare creates, consumes and binds the queue of s on the topology
// channel. It consumes before binding: once consumed, the auto-delete queue
// goes away with the channel if a later step fails.
func (t *topology) declare(s *sub) error {
	ch := t.s.topo
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("declare queue for %q: %w", s.event, err)
	}
	t.tags++
	tag := "relay-bridge-" + strconv.FormatUint(t.tags, 10)
	deliveries, err := ch.Consume(q.Name, tag, true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s for %q: %w", q.Name, s.event, err)
	}
	s.tag = tag
	t.b.wg.Add(1)
	go t.b.read(s, deliveries)
	if err := ch.QueueBind(q.Name, s.event, t.b.cfg.Exchange, false, nil); err != nil {
		return fmt.Errorf("bind %s to %q: %w", q.Name, s.event, err)
	}
	t.b.mu.Lock()
	s.queue, s.ready = q.Name, true
	t.b.notifyLocked()
	t.b.mu.Unlock()
	t.b.log.Debug("subscribed", "event", s.event, "queue", q.Name)
	return nil
}

// undeclare cancels the consumer of s and deletes its queue, if it has them.
func (t *topology) undeclare(s *sub) error {
	if s.tag == "" {
		return nil
	}
	tag, queue := s.tag, s.queue
	s.tag = ""
	t.b.mu.Lock()
	s.queue, s.ready = "", false
	t.b.mu.Unlock()
	if err := t.s.topo.Cancel(tag, false); err != nil {
		return fmt.Errorf("cancel consumer of %q: %w", s.event, err)
	}
	// Cancelling already deletes an auto-delete queue; deleting it as well
	// keeps the protocol's promise explicit (RabbitMQ answers delete-ok
	// for a queue that is already gone).
	if _, err := t.s.topo.QueueDelete(queue, false, false, false); err != nil {
		return fmt.Errorf("delete %s of %q: %w", queue, s.event, err)
	}
	t.b.log.Debug("unsubscribed", "event", s.event, "queue", queue)
	return nil
}

// connect dials and builds the whole topology, or schedules a retry.
func (t *topology) connect() {
	if err := t.open(); err != nil {
		t.lost(err)
		return
	}
	t.setConnected(true)
	if t.down {
		t.b.reconnects.Add(1)
		t.b.log.Info("broker connection restored")
	} else {
		t.b.log.Info("broker connected")
	}
	t.down = false
}

func (t *topology) open() error {
	conn, err := t.b.dial()
	if err != nil {
		return err
	}
	t.b.mu.Lock()
	closing := t.b.ctx.Err() != nil
	if !closing {
		t.b.conn = conn
	}
	t.b.mu.Unlock()
	if closing {
		_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
		return ErrClosed
	}
	t.s = &session{conn: conn, connErr: conn.NotifyClose(make(chan *amqp.Error, 1)), since: time.Now()}
	if err := t.openTopology(); err != nil {
		return err
	}
	return t.openPublisher()
}

// dial connects to the broker. Close interrupts both the TCP connect and
// the AMQP handshake.
func (b *AMQP) dial() (*amqp.Connection, error) {
	var stop func() bool
	props := amqp.NewConnectionProperties()
	props["connection_name"] = "relay bridge " + b.cfg.Node
	conn, err := amqp.DialConfig(b.cfg.URL, amqp.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(b.ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// amqp091-go clears this deadline once the handshake is done.
			if err := c.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
				_ = c.Close()
				return nil, err
			}
			stop = context.AfterFunc(b.ctx, func() { _ = c.Close() })
			return c, nil
		},
	})
	if stop != nil {
		stop()
	}
	return conn, err
}

// channel opens a channel that reports its close on the returned chan and
// declares the exchange on it.
func (t *topology) channel() (*amqp.Channel, chan *amqp.Error, error) {
	ch, err := t.s.conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	errs := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.ExchangeDeclare(t.b.cfg.Exchange, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		return nil, nil, fmt.Errorf("declare exchange %q: %w", t.b.cfg.Exchange, err)
	}
	return ch, errs, nil
}

// openTopology opens the topology channel and declares every subscription.
func (t *topology) openTopology() error {
	ch, errs, err := t.channel()
	if err != nil {
		return err
	}
	t.s.topo, t.s.topoErr = ch, errs
	for _, s := range t.subs {
		if s.active.Load() {
			if err := t.declare(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *topology) openPublisher() error {
	ch, errs, err := t.channel()
	if err != nil {
		return err
	}
	t.s.pub, t.s.pubErr = ch, errs
	t.b.pubCh.Store(ch)
	return nil
}

// reopenTopology replaces a failed topology channel. Its consumers are gone
// and, being exclusive and auto-delete, so are their queues.
func (t *topology) reopenTopology(cause error) {
	if t.b.ctx.Err() != nil || t.s == nil {
		return
	}
	if t.s.conn.IsClosed() {
		t.lost(cause)
		return
	}
	t.setConnected(false)
	t.b.log.Warn("broker channel closed, reopening", "channel", "topology", "err", cause)
	t.forget()
	_ = t.s.topo.Close()
	if err := t.openTopology(); err != nil {
		t.lost(err)
		return
	}
	t.setConnected(true)
}

// reopenPublisher replaces a failed publish channel.
func (t *topology) reopenPublisher(cause error) {
	if t.b.ctx.Err() != nil || t.s == nil {
		return
	}
	if t.s.conn.IsClosed() {
		t.lost(cause)
		return
	}
	t.b.pubCh.Store(nil)
	t.setConnected(false)
	t.b.log.Warn("broker channel closed, reopening", "channel", "publish", "err", cause)
	_ = t.s.pub.Close()
	if err := t.openPublisher(); err != nil {
		t.lost(err)
		return
	}
	t.setConnected(true)
}

// setConnected sets Stats.Connected: the connection and both channels are
// open.
func (t *topology) setConnected(up bool) {
	t.b.mu.Lock()
	t.b.connected = up
	t.b.notifyLocked()
	t.b.mu.Unlock()
}

// forget records that no subscription has a consumer or queue any more.
func (t *topology) forget() {
	t.b.mu.Lock()
	for _, s := range t.subs {
		s.tag = ""
		s.queue, s.ready = "", false
	}
	t.b.notifyLocked()
	t.b.mu.Unlock()
}

// lost drops the session, if any, and schedules a reconnect. An outage is
// logged once, when it begins.
func (t *topology) lost(cause error) {
	if t.b.ctx.Err() != nil {
		return
	}
	if s := t.s; s != nil {
		t.s = nil
		t.b.pubCh.Store(nil)
		t.forget()
		t.b.mu.Lock()
		t.b.connected, t.b.conn = false, nil
		t.b.notifyLocked()
		t.b.mu.Unlock()
		if time.Since(s.since) >= t.b.cfg.ReconnectMax {
			t.attempt = 0
		}
		_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout))
	}
	if !t.down {
		t.down = true
		t.b.log.Warn("broker unreachable, retrying", "err", cause)
	} else {
		t.b.log.Debug("broker connect failed", "err", cause)
	}
	t.retry.Reset(t.backoff())
}

// backoff returns the next delay: ReconnectMin doubled per failed attempt,
// capped at ReconnectMax, then jittered down by up to half.
func (t *topology) backoff() time.Duration {
	d := t.b.cfg.ReconnectMin
	for i := 0; i < t.attempt && d < t.b.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, t.b.cfg.ReconnectMax)
	if d < t.b.cfg.ReconnectMax {
		t.attempt++
	}
	return d/2 + rand.N(d/2+1)
}

// stop ends the session when run returns.
func (t *topology) stop() {
	t.retry.Stop()
	t.b.pubCh.Store(nil)
	if t.s != nil {
		_ = t.s.conn.CloseDeadline(time.Now().Add(closeTimeout))
	}
	t.setConnected(false)
}
