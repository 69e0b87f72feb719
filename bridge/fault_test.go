package bridge

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
)

// closedPortURL returns an AMQP URL where nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "amqp://guest:guest@" + addr + "/"
}

func TestBrokerDownAtStart(t *testing.T) {
	logger, logs := newLogger(t)
	b, err := New(Config{URL: closedPortURL(t), Node: "A", Logger: logger,
		ReconnectMin: time.Millisecond, ReconnectMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("New with the broker down: %v, want no error", err)
	}
	t.Cleanup(func() { closeBridge(t, b) })

	within(t, 2*time.Second, "Publish/Subscribe/Unsubscribe with the broker down", func() {
		for range 10000 {
			b.Publish("E", []byte("x"))
		}
		b.Subscribe("E", func([]byte) {})
		b.Unsubscribe("E")
		b.Subscribe("E", func([]byte) {})
	})
	st := b.Stats()
	if st.Connected || st.Published != 0 || st.PublishDropped != 10000 || st.Subscriptions != 1 {
		t.Errorf("stats = %+v, want disconnected, 10000 dropped, 1 subscription", st)
	}
	if q := b.QueueName("E"); q != "" {
		t.Errorf("QueueName while down = %q", q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady while down = %v, want DeadlineExceeded", err)
	}
	eventually(t, "several retries", func() bool { return logs.count("broker connect failed") >= 3 })
	if n := logs.count("broker unreachable, retrying"); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}

	closeBridge(t, b)
	if err := b.WaitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitReady after Close = %v, want ErrClosed", err)
	}
	b.Publish("E", []byte("x")) // dropped, not a panic
}

// startProxy runs an in-process toxiproxy from a local port to upstream and
// returns it with the AMQP URL that goes through it.
func startProxy(t *testing.T, brokerURL string) (*toxiproxy.Proxy, string) {
	t.Helper()
	uri, err := amqp.ParseURI(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	upstream := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	proxy := toxiproxy.NewProxy(server, "amqp", "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(proxy.Stop)
	// Listen now holds the port it got, so a restart listens there again.
	host, port, err := net.SplitHostPort(proxy.Listen)
	if err != nil {
		t.Fatal(err)
	}
	uri.Host = host
	uri.Port, _ = strconv.Atoi(port)
	return proxy, uri.String()
}

func TestReconnectAfterConnectionCut(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	proxy, proxyURL := startProxy(t, url)
	logger, logs := newLogger(t)
	a := newBridge(t, Config{URL: proxyURL, Exchange: ex, Node: "A", Logger: logger,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B"})

	var aE1, aE2, bE1, bE2 sink
	a.Subscribe("E1", aE1.deliver)
	b.Subscribe("E1", bE1.deliver)
	b.Subscribe("E2", bE2.deliver)
	waitReady(t, a, b)
	a.Publish("E1", []byte("a-before"))
	b.Publish("E1", []byte("b-before"))
	bE1.waitN(t, 1)
	aE1.waitN(t, 1)
	queueBefore := a.QueueName("E1")

	proxy.Stop() // cuts A's connection and refuses new ones
	eventually(t, "A to see the cut", func() bool { return !a.Stats().Connected })

	// The node goes on: nothing A offers the server blocks.
	dropped := a.Stats().PublishDropped
	within(t, 2*time.Second, "A's calls during the outage", func() {
		for range 1000 {
			a.Publish("E1", []byte("lost"))
		}
		a.Subscribe("E2", aE2.deliver) // subscribed during the outage
		a.Subscribe("E3", func([]byte) {})
		a.Unsubscribe("E3")
	})
	if got := a.Stats().PublishDropped - dropped; got != 1000 {
		t.Errorf("%d publishes dropped during the outage, want 1000", got)
	}
	if q := a.QueueName("E2"); q != "" {
		t.Errorf("QueueName(E2) during the outage = %q", q)
	}
	eventually(t, "A to retry a few times", func() bool { return logs.count("broker connect failed") >= 2 })

	if err := proxy.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
	waitReady(t, a)
	if q := a.QueueName("E1"); q == "" || q == queueBefore {
		t.Errorf("E1's queue after reconnect = %q, want a new one (was %q)", q, queueBefore)
	}

	// Both directions work again, for an event subscribed before the cut
	// and for one subscribed during it.
	b.Publish("E1", []byte("b-after"))
	b.Publish("E2", []byte("b-after"))
	a.Publish("E1", []byte("a-after"))
	a.Publish("E2", []byte("a-after"))
	if got := aE1.waitN(t, 2); got[1] != "b-after" {
		t.Errorf("A's E1 got %q", got)
	}
	if got := aE2.waitN(t, 1); got[0] != "b-after" {
		t.Errorf("A's E2 got %q", got)
	}
	if got := bE1.waitN(t, 2); got[1] != "a-after" {
		t.Errorf("B's E1 got %q", got)
	}
	if got := bE2.waitN(t, 1); got[0] != "a-after" {
		t.Errorf("B's E2 got %q", got)
	}

	if n := logs.count("broker unreachable, retrying"); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}
	if n := logs.count("broker connection restored"); n != 1 {
		t.Errorf("restore logged %d times, want once", n)
	}
	if st := a.Stats(); st.Reconnects != 1 || !st.Connected || st.Subscriptions != 2 {
		t.Errorf("A stats = %+v, want 1 reconnect, connected, 2 subscriptions", st)
	}
}

// A channel exception (here NOT_FOUND, after an operator deleted the
// exchange) closes one channel; the bridge reopens that channel alone,
// declares the exchange again and redeclares its subscriptions.
func TestChannelExceptionReopensChannel(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	admin, err := adminConn(t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	logA, logsA := newLogger(t)
	logB, logsB := newLogger(t)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "A", Logger: logA})
	b := newBridge(t, Config{URL: url, Exchange: ex, Node: "B", Logger: logB})
	var e1, e2 sink
	a.Subscribe("E1", e1.deliver)
	waitReady(t, a, b)

	// Topology channel: binding E2 to the missing exchange fails.
	if err := admin.ExchangeDelete(ex, false, false); err != nil {
		t.Fatal(err)
	}
	a.Subscribe("E2", e2.deliver)
	waitReady(t, a)
	b.Publish("E1", []byte("one"))
	b.Publish("E2", []byte("two"))
	e1.waitN(t, 1)
	e2.waitN(t, 1)
	if n := logsA.count("broker channel closed, reopening"); n != 1 {
		t.Errorf("A logged %d channel reopenings, want 1", n)
	}

	// Publish channel: publishing to the missing exchange fails.
	if err := admin.ExchangeDelete(ex, false, false); err != nil {
		t.Fatal(err)
	}
	published := b.Stats().Published
	b.Publish("E1", []byte("to nowhere"))
	eventually(t, "B to reopen its publish channel", func() bool {
		return logsB.count("broker channel closed, reopening") == 1 && b.Stats().Connected
	})
	b.Publish("E1", []byte("again"))
	eventually(t, "B to publish again", func() bool { return b.Stats().Published >= published+2 })

	for name, logs := range map[string]*logBuffer{"A": logsA, "B": logsB} {
		if n := logs.count("broker unreachable, retrying"); n != 0 {
			t.Errorf("%s reconnected %d times for a channel exception", name, n)
		}
	}
}

// An exchange of the same name with other flags makes every declare fail
// (PRECONDITION_FAILED); the bridge retries with backoff, logs it once, and
// connects once the conflict is gone.
func TestConflictingExchangeIsRetried(t *testing.T) {
	url := brokerURL(t)
	ex := testExchange(t, url)
	admin, err := adminConn(t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.ExchangeDeclare(ex, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger(t)
	a := newBridge(t, Config{URL: url, Exchange: ex, Node: "A", Logger: logger,
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond})
	a.Subscribe("E", func([]byte) {})
	eventually(t, "a few failed attempts", func() bool { return logs.count("broker connect failed") >= 2 })
	if a.Stats().Connected {
		t.Fatal("connected although the exchange cannot be declared")
	}
	if err := admin.ExchangeDelete(ex, false, false); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a)
	if n := logs.count("broker unreachable, retrying"); n != 1 {
		t.Errorf("logged the failure %d times, want once", n)
	}
}
