package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestCrossNodeDeliveryInOrderWithoutEcho(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "A"})
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B"})
	var atA, atB sink
	a.Subscribe("E", atA.deliver)
	b.Subscribe("E", atB.deliver)
	waitReady(t, a, b)

	var want []string
	for i := range 100 {
		body := fmt.Sprintf("batch-%03d", i)
		want = append(want, body)
		a.Publish("E", []byte(body))
	}
	// One queue delivers in order, so a duplicate would show before "end".
	a.Publish("E", []byte("end"))
	want = append(want, "end")

	if got := atB.waitN(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("B got %d bodies %q..., want %d in order", len(got), got[:min(5, len(got))], len(want))
	}
	// A's own queue receives its batches too; they are dropped, not delivered.
	eventually(t, "A to drop its own 101 batches", func() bool { return a.Stats().DroppedOwn == 101 })
	if got := atA.bodies(); len(got) != 0 {
		t.Errorf("A delivered %d of its own batches to itself", len(got))
	}
	sa, sb := a.Stats(), b.Stats()
	if !sa.Connected || sa.Published != 101 || sa.PublishDropped != 0 || sa.Delivered != 0 || sa.Subscriptions != 1 {
		t.Errorf("A stats = %+v", sa)
	}
	if sb.Delivered != 101 || sb.DroppedOwn != 0 || sb.Published != 0 {
		t.Errorf("B stats = %+v", sb)
	}
}

func TestPublishedMessageFollowsProtocol(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "node-7", Expiration: 1500 * time.Millisecond})
	waitReady(t, a)

	ch, err := adminConn(t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "ev:1", ex, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	body := []byte{0x81, 0xa1, 't', 0xa5, 'b', 'a', 't', 'c', 'h'}
	a.Publish("ev:1", slices.Clone(body))
	var d amqp.Delivery
	select {
	case d = <-deliveries:
	case <-time.After(waitFor):
		t.Fatal("no message reached the test's queue")
	}
	if d.Exchange != ex || d.RoutingKey != "ev:1" || !slices.Equal(d.Body, body) {
		t.Errorf("exchange %q key %q body %x; want %q, ev:1, %x", d.Exchange, d.RoutingKey, d.Body, ex, body)
	}
	if d.ContentType != "application/msgpack" || d.DeliveryMode != amqp.Transient || d.Expiration != "1500" {
		t.Errorf("content type %q, delivery mode %d, expiration %q", d.ContentType, d.DeliveryMode, d.Expiration)
	}
	if d.Headers[headerNode] != "node-7" {
		t.Errorf("headers %v, want x-relay-node=node-7", d.Headers)
	}

	// The exchange is durable and not auto-delete: a passive declare with
	// those flags succeeds.
	if err := ch.ExchangeDeclarePassive(ex, "direct", true, false, false, false, nil); err != nil {
		t.Errorf("exchange %s is not a durable direct exchange: %v", ex, err)
	}
}

func TestEventsAreIsolated(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "A"})
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B"})
	var e1, e2 sink
	b.Subscribe("E1", e1.deliver)
	b.Subscribe("E2", e2.deliver)
	waitReady(t, a, b)

	for i := range 20 {
		a.Publish("E1", []byte(fmt.Sprintf("E1-%d", i)))
		a.Publish("E2", []byte(fmt.Sprintf("E2-%d", i)))
		a.Publish("E3", []byte(fmt.Sprintf("E3-%d", i))) // nobody subscribed
	}
	for _, c := range []struct {
		event string
		s     *sink
	}{{"E1", &e1}, {"E2", &e2}} {
		got := c.s.waitN(t, 20)
		for _, body := range got {
			if !strings.HasPrefix(body, c.event+"-") {
				t.Errorf("%s's deliver got %q", c.event, body)
			}
		}
	}
	// B's queues were bound before A published and hold nothing else, so
	// once both are complete, nothing more is coming: check the totals.
	eventually(t, "B to deliver 40", func() bool { return b.Stats().Delivered == 40 })
	if n := len(e1.bodies()) + len(e2.bodies()); n != 40 {
		t.Errorf("delivered %d bodies, want 40", n)
	}
}

func TestQueueExistsOnlyWhileSubscribed(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	admin := adminConn(t, url)
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B"})
	waitReady(t, b)

	if q := b.QueueName("E"); q != "" {
		t.Fatalf("QueueName before Subscribe = %q", q)
	}
	if routed(t, admin, ex, "E") {
		t.Fatal("a message for E is routed although no node subscribed")
	}

	var s sink
	b.Subscribe("E", s.deliver)
	waitReady(t, b)
	q := b.QueueName("E")
	if !strings.HasPrefix(q, "amq.gen-") {
		t.Fatalf("QueueName = %q, want a server-named amq.gen-* queue", q)
	}
	if code := queueCode(t, admin, q); code != amqp.ResourceLocked {
		t.Fatalf("passive declare of %s from another connection: code %d, want %d (exclusive, exists)", q, code, amqp.ResourceLocked)
	}
	if !routed(t, admin, ex, "E") {
		t.Fatal("a message for E is not routed while B is subscribed")
	}
	if got := s.waitN(t, 1); got[0] != "probe" {
		t.Fatalf("B got %q, want the probe", got)
	}
	if st := b.Stats(); st.Subscriptions != 1 {
		t.Errorf("Subscriptions = %d, want 1", st.Subscriptions)
	}

	b.Unsubscribe("E")
	if got := b.QueueName("E"); got != "" {
		t.Errorf("QueueName right after Unsubscribe = %q, want \"\"", got)
	}
	waitReady(t, b)
	if code := queueCode(t, admin, q); code != amqp.NotFound {
		t.Fatalf("passive declare of %s after Unsubscribe: code %d, want %d (deleted)", q, code, amqp.NotFound)
	}
	if routed(t, admin, ex, "E") {
		t.Fatal("a message for E is still routed after Unsubscribe")
	}
	if st := b.Stats(); st.Subscriptions != 0 {
		t.Errorf("Subscriptions = %d, want 0", st.Subscriptions)
	}
}

func TestResubscribeQuicklyEndsWithOneQueue(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	admin := adminConn(t, url)
	logger, logs := newLogger(t)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "A"})
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B", Logger: logger})
	waitReady(t, a, b)

	// The event empties and fills again, over and over. Every other round
	// waits until its queue is on the broker; the others are undone before
	// the topology goroutine gets to them.
	var old sink
	for i := range 20 {
		b.Subscribe("E", old.deliver)
		if i%2 == 1 {
			eventually(t, "a queue for E", func() bool { return b.QueueName("E") != "" })
		}
		b.Unsubscribe("E")
	}
	var last sink
	b.Subscribe("E", last.deliver)
	waitReady(t, b)

	q := b.QueueName("E")
	if q == "" {
		t.Fatal("not subscribed after Subscribe, Unsubscribe, ..., Subscribe")
	}
	// Every queue B declared (its debug log names them) is gone but one.
	names := logs.queues()
	for _, name := range names {
		want := amqp.NotFound
		if name == q {
			want = amqp.ResourceLocked
		}
		if code := queueCode(t, admin, name); code != want {
			t.Errorf("queue %s: code %d, want %d", name, code, want)
		}
	}
	if !slices.Contains(names, q) {
		t.Errorf("current queue %s is not among the logged ones %v", q, names)
	}
	t.Logf("%d of 21 subscriptions reached the broker", len(names))
	// Cancel already deleted each auto-delete queue; the explicit delete
	// that follows must not raise NOT_FOUND (which would close the channel).
	if n := logs.count("broker channel closed, reopening"); n != 0 {
		t.Errorf("the topology channel was reopened %d times", n)
	}

	a.Publish("E", []byte("one"))
	a.Publish("E", []byte("end"))
	if got := last.waitN(t, 2); !slices.Equal(got, []string{"one", "end"}) {
		t.Errorf("last subscription got %q, want [one end]", got)
	}
	if got := old.bodies(); len(got) != 0 {
		t.Errorf("ended subscriptions got %q", got)
	}
}

func TestNoDeliveryAfterUnsubscribe(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "A"})
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B"})
	var unsubscribed atomic.Bool
	var calls, late atomic.Int64
	b.Subscribe("E", func([]byte) {
		calls.Add(1)
		if unsubscribed.Load() {
			late.Add(1)
		}
	})
	waitReady(t, a, b)

	ctx, stop := context.WithCancel(context.Background())
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				a.Publish("E", []byte("x"))
			}
		}
	}()
	eventually(t, "deliveries to start", func() bool { return calls.Load() >= 20 })
	b.Unsubscribe("E")
	unsubscribed.Store(true)
	waitReady(t, b)
	stop()
	<-published

	// A reader checks the subscription just before each call, so one call
	// that had passed the check may still begin after Unsubscribe returns.
	if n := late.Load(); n > 1 {
		t.Errorf("%d deliver calls began after Unsubscribe returned, want at most 1", n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{URL: "amqp://guest:guest@127.0.0.1:1/", Node: "A"}
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"bad URL", func(c *Config) { c.URL = "http://127.0.0.1:5672/" }},
		{"no node", func(c *Config) { c.Node = "" }},
		{"negative expiration", func(c *Config) { c.Expiration = -time.Second }},
		{"sub-millisecond expiration", func(c *Config) { c.Expiration = time.Microsecond }},
		{"negative queue", func(c *Config) { c.PublishQueue = -1 }},
		{"max below min", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Second, time.Millisecond }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			b, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				if b != nil {
					_ = b.Close()
				}
				t.Fatalf("New: err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{URL: "amqp://127.0.0.1/", Node: "A"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Exchange != "relay.events" || cfg.Expiration != 5*time.Second || cfg.PublishQueue != 4096 ||
		cfg.ReconnectMin != 100*time.Millisecond || cfg.ReconnectMax != 10*time.Second || cfg.Logger == nil {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	b := &AMQP{cfg: Config{ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}}
	tp := &topology{b: b}
	for i, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceil *= time.Millisecond
		if d := tp.backoff(); d < ceil/2 || d > ceil {
			t.Errorf("attempt %d: backoff %v, want in [%v, %v]", i, d, ceil/2, ceil)
		}
	}
}
