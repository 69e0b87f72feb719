package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Bridge is what the server needs from a cluster link. Standalone nodes have
// none (nil).
type Bridge interface {
	// Subscribe starts delivering other nodes' batches for event to deliver.
	// Called when the event gets its first local member. Never blocks on the
	// network. deliver is called from a bridge goroutine with a body the
	// callee then owns; it must not block.
	Subscribe(event string, deliver func(body []byte))
	// Unsubscribe stops delivery and deletes the event's queue. Called after
	// the last local member left. Never blocks on the network.
	Unsubscribe(event string)
	// Publish sends one batch body for event to other nodes. Never blocks:
	// if the broker is down or slow, the batch is dropped and counted. The
	// bridge takes ownership of body.
	Publish(event string, body []byte)
	// Close cancels consumers, closes the connection and waits for the
	// bridge's goroutines.
	Close() error
}

var _ Bridge = (*AMQP)(nil)

// Errors returned by this package.
var (
	// ErrInvalidConfig is wrapped by New when a Config field is missing or
	// out of range.
	ErrInvalidConfig = errors.New("bridge: invalid config")
	// ErrClosed is returned by WaitReady once Close has been called.
	ErrClosed = errors.New("bridge: closed")
)

const (
	defaultExchange     = "relay.events"
	defaultExpiration   = 5 * time.Second
	defaultPublishQueue = 4096
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 10 * time.Second

	headerNode  = "x-relay-node"
	contentType = "application/msgpack"

	// dialTimeout bounds the TCP connect and, separately, the AMQP handshake.
	dialTimeout = 5 * time.Second
	// closeTimeout bounds the connection.close handshake with the broker.
	closeTimeout = 2 * time.Second
)

// Config configures an AMQP bridge. Zero values mean the documented default.
type Config struct {
	// URL of the broker, e.g. amqp://guest:guest@127.0.0.1:5672/. Required.
	URL string
	// Exchange is the direct exchange all nodes share. Default "relay.events".
	Exchange string
	// Node is this node's ID, required. It is stamped in header x-relay-node
	// of every published message; messages carrying it are dropped on receipt.
	Node string
	// Expiration is the per-message TTL, at least 1ms. Default 5s.
	Expiration time.Duration
	// PublishQueue is how many batches wait for the publisher goroutine;
	// beyond it Publish drops. Default 4096.
	PublishQueue int
	// ReconnectMin and ReconnectMax bound the reconnect backoff, which
	// doubles per failed attempt, with jitter. Defaults 100ms and 10s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives state changes (never one line per message). Default
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with defaults filled in, or an error wrapping
// ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, fmt.Errorf("%w: URL is required", ErrInvalidConfig)
	}
	if _, err := amqp.ParseURI(c.URL); err != nil {
		return c, fmt.Errorf("%w: URL: %w", ErrInvalidConfig, err)
	}
	if c.Node == "" {
		return c, fmt.Errorf("%w: Node is required", ErrInvalidConfig)
	}
	if c.Expiration < 0 || c.PublishQueue < 0 || c.ReconnectMin < 0 || c.ReconnectMax < 0 {
		return c, fmt.Errorf("%w: negative Expiration, PublishQueue or Reconnect bound", ErrInvalidConfig)
	}
	if c.Exchange == "" {
		c.Exchange = defaultExchange
	}
	if c.Expiration == 0 {
		c.Expiration = defaultExpiration
	}
	if c.Expiration < time.Millisecond {
		return c, fmt.Errorf("%w: Expiration %v is under 1ms", ErrInvalidConfig, c.Expiration)
	}
	if c.PublishQueue == 0 {
		c.PublishQueue = defaultPublishQueue
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = defaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = max(defaultReconnectMax, c.ReconnectMin)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return c, fmt.Errorf("%w: ReconnectMax %v < ReconnectMin %v", ErrInvalidConfig, c.ReconnectMax, c.ReconnectMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Stats are the bridge's counters since New.
type Stats struct {
	Connected      bool   `json:"connected"`       // connection and both channels are open
	Published      uint64 `json:"published"`       // batches handed to the broker
	PublishDropped uint64 `json:"publish_dropped"` // batches dropped: broker down, queue full or write failed
	Delivered      uint64 `json:"delivered"`       // bodies passed to deliver funcs
	DroppedOwn     uint64 `json:"dropped_own"`     // deliveries dropped because this node sent them
	Reconnects     uint64 `json:"reconnects"`      // times the connection was restored after an outage
	Subscriptions  int    `json:"subscriptions"`   // events currently subscribed
	Ready          bool   `json:"ready"`           // connected, and every subscription declared, bound and consuming
}

// AMQP is a Bridge over one RabbitMQ connection. Create it with New.
type AMQP struct {
	cfg     Config
	log     *slog.Logger
	headers amqp.Table // read-only after New; shared by every publishing
	expire  string     // Config.Expiration in ms, as AMQP wants it

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // run, publisher and readers

	out   chan outgoing                // publish queue, bounded
	pubCh atomic.Pointer[amqp.Channel] // publish channel; nil while down
	wake  chan struct{}                // capacity 1: commands are waiting

	published, publishDropped, delivered, droppedOwn, reconnects atomic.Uint64

	mu        sync.Mutex       // guards the fields below; never held across network calls
	subs      map[string]*sub  // current subscriptions, as callers see them
	cmds      []command        // not yet taken by run, in call order
	pending   int              // commands queued or being applied
	connected bool             // see Stats.Connected
	conn      *amqp.Connection // current connection, for Close to cut
	changed   chan struct{}    // closed and replaced on every readiness change
}

// sub is one subscription: one Subscribe call up to its Unsubscribe.
type sub struct {
	event   string
	deliver func(body []byte)
	active  atomic.Bool // cleared by Unsubscribe and Close
	mu      sync.Mutex  // serializes deliver calls

	tag   string // consumer tag on the topology channel, "" if none; owned by run
	queue string // guarded by AMQP.mu, written by run only
	ready bool   // declared, consuming and bound; guarded by AMQP.mu
}

type command struct {
	sub       *sub
	subscribe bool // false: unsubscribe
}

type outgoing struct {
	event string
	body  []byte
}

// New validates cfg and starts connecting in the background. A broker that
// is down is not an error: it is logged once and retried with backoff.
func New(cfg Config) (*AMQP, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &AMQP{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "bridge", "node", cfg.Node),
		headers: amqp.Table{headerNode: cfg.Node},
		expire:  strconv.FormatInt(cfg.Expiration.Milliseconds(), 10),
		ctx:     ctx,
		cancel:  cancel,
		out:     make(chan outgoing, cfg.PublishQueue),
		wake:    make(chan struct{}, 1),
		subs:    make(map[string]*sub),
		changed: make(chan struct{}),
	}
	b.wg.Add(2)
	go b.run()
	go b.publisher()
	return b, nil
}

// Subscribe implements Bridge. Subscribing an event that is already
// subscribed replaces its deliver func (and its queue). A nil deliver panics.
func (b *AMQP) Subscribe(event string, deliver func(body []byte)) {
	if deliver == nil {
		panic("bridge: Subscribe with a nil deliver func")
	}
	s := &sub{event: event, deliver: deliver}
	s.active.Store(true)
	b.mu.Lock()
	if b.ctx.Err() != nil {
		b.mu.Unlock()
		return
	}
	if old := b.subs[event]; old != nil {
		old.active.Store(false)
		b.enqueueLocked(command{sub: old})
	}
	b.subs[event] = s
	b.enqueueLocked(command{sub: s, subscribe: true})
	b.mu.Unlock()
}

// Unsubscribe implements Bridge. Unsubscribing an event that is not
// subscribed does nothing.
func (b *AMQP) Unsubscribe(event string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subs[event]
	if s == nil {
		return
	}
	delete(b.subs, event)
	s.active.Store(false)
	b.enqueueLocked(command{sub: s})
}

// enqueueLocked queues c for run. b.mu must be held.
func (b *AMQP) enqueueLocked(c command) {
	b.cmds = append(b.cmds, c)
	b.pending++
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// takeCommands returns the queued commands, for run.
func (b *AMQP) takeCommands() []command {
	b.mu.Lock()
	defer b.mu.Unlock()
	cmds := b.cmds
	b.cmds = nil
	return cmds
}

// applied records that run finished n commands.
func (b *AMQP) applied(n int) {
	b.mu.Lock()
	b.pending -= n
	b.notifyLocked()
	b.mu.Unlock()
}

// notifyLocked wakes WaitReady callers. b.mu must be held.
func (b *AMQP) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Publish implements Bridge.
func (b *AMQP) Publish(event string, body []byte) {
	if b.pubCh.Load() == nil {
		b.publishDropped.Add(1)
		return
	}
	select {
	case b.out <- outgoing{event: event, body: body}:
	default:
		b.publishDropped.Add(1)
	}
}

// publisher writes queued batches to the publish channel until Close.
func (b *AMQP) publisher() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case m := <-b.out:
			b.send(m)
		}
	}
}

func (b *AMQP) send(m outgoing) {
	ch := b.pubCh.Load()
	if ch == nil {
		b.publishDropped.Add(1)
		return
	}
	// amqp091-go v1.17.0 checks the context only before writing, so a
	// timeout here would bound nothing: a write stuck on a slow broker holds
	// this goroutine while Publish drops; Close unsticks it with a socket
	// deadline. b.ctx stops publishing once Close has begun.
	err := ch.PublishWithContext(b.ctx, b.cfg.Exchange, m.event, false, false, amqp.Publishing{
		Headers:      b.headers,
		ContentType:  contentType,
		DeliveryMode: amqp.Transient,
		Expiration:   b.expire,
		Body:         m.body,
	})
	if err != nil {
		// The topology goroutine sees the channel or connection close and
		// reopens it; one failed write is not worth a log line.
		b.publishDropped.Add(1)
		return
	}
	b.published.Add(1)
}

// read passes one consumer's deliveries to s until the consumer ends.
func (b *AMQP) read(s *sub, deliveries <-chan amqp.Delivery) {
	defer b.wg.Done()
	for d := range deliveries {
		if node, _ := d.Headers[headerNode].(string); node == b.cfg.Node {
			b.droppedOwn.Add(1)
			continue
		}
		s.mu.Lock()
		if s.active.Load() {
			b.delivered.Add(1)
			s.deliver(d.Body)
		}
		s.mu.Unlock()
	}
}

// Stats returns the current counters.
func (b *AMQP) Stats() Stats {
	b.mu.Lock()
	connected, n, ready := b.connected, len(b.subs), b.readyLocked()
	b.mu.Unlock()
	return Stats{
		Connected:      connected,
		Published:      b.published.Load(),
		PublishDropped: b.publishDropped.Load(),
		Delivered:      b.delivered.Load(),
		DroppedOwn:     b.droppedOwn.Load(),
		Reconnects:     b.reconnects.Load(),
		Subscriptions:  n,
		Ready:          ready,
	}
}

// QueueName returns the server-named queue currently consumed for event, or
// "" if event is not subscribed or its queue is not declared (yet).
func (b *AMQP) QueueName(event string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.subs[event]; s != nil {
		return s.queue
	}
	return ""
}

// WaitReady waits until the bridge is connected, every Subscribe and
// Unsubscribe called so far has been applied on the broker, and every
// current subscription is declared, consuming and bound. It returns
// ctx.Err() (wrapped) or ErrClosed if that does not happen first.
func (b *AMQP) WaitReady(ctx context.Context) error {
	for {
		b.mu.Lock()
		ready := b.readyLocked()
		changed := b.changed
		b.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-changed:
		case <-b.ctx.Done():
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("bridge: not ready: %w", ctx.Err())
		}
	}
}

func (b *AMQP) readyLocked() bool {
	if !b.connected || b.pending > 0 {
		return false
	}
	for _, s := range b.subs {
		if !s.ready {
			return false
		}
	}
	return true
}

// Close ends every subscription, closes the connection (the broker then
// drops this node's consumers and exclusive queues) and waits for every
// goroutine of the bridge. It must not be called from a deliver func.
// Calling it again does nothing.
func (b *AMQP) Close() error {
	b.cancel()
	b.pubCh.Store(nil)
	b.mu.Lock()
	conn := b.conn
	b.conn = nil
	for _, s := range b.subs {
		s.active.Store(false)
	}
	b.mu.Unlock()
	if conn != nil {
		// Cutting the connection here also unsticks a topology call or a
		// publish that waits on a broker that stopped answering.
		_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
	}
	b.wg.Wait()
	return nil
}
