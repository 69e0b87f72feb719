package baseline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/relay-dev/relay/codec"
)

// amqpURL is the broker of the cluster test. Like the server's cluster
// tests, it fails rather than skips when none answers: a skipped test would
// hide a broken cluster mode.
func amqpURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("RELAY_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
	if err != nil {
		t.Fatalf("no RabbitMQ at RELAY_AMQP_URL=%s: %v; run `make broker` (or `rabbitmq-server -detached`)", u, err)
	}
	_ = conn.Close()
	return u
}

// testExchange returns a fresh exchange name, deleted when the test ends
// (after the nodes, whose cleanups were registered later).
func testExchange(t *testing.T, u string) string {
	t.Helper()
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "relay.test.baseline." + hex.EncodeToString(r[:])
	t.Cleanup(func() {
		conn, err := amqp.Dial(u)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
		}
	})
	return name
}

func waitReady(t *testing.T, nodes ...*Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range nodes {
		if err := s.Bridge().WaitReady(ctx); err != nil {
			t.Fatalf("bridge of %s not ready: %v", s.cfg.Node, err)
		}
	}
}

func TestClusterEveryUpdateIsItsOwnBrokerMessage(t *testing.T) {
	u := amqpURL(t)
	ex := testExchange(t, u)
	a := start(t, Config{Node: "base-A", AMQPURL: u, Exchange: ex})
	b := start(t, Config{Node: "base-B", AMQPURL: u, Exchange: ex})
	alice, _ := join(t, a, "lobby", "alice")
	bob, _ := join(t, b, "lobby", "bob")
	waitReady(t, a, b)

	const burst = 5
	for i := range burst {
		alice.send(codec.AppendCursor(nil, float64(i), 1))
	}
	var first uint64
	for i := range burst {
		f := bob.until(func(f frame) bool { return f["n"] == "base-A" && f["cur"] != nil })
		if i == 0 {
			first = uint64(num(f["seq"]))
		}
		entry := only(t, f, "base-A", first+uint64(i), "cur").([]any)
		if entry[0] != "alice" || num(entry[1]) != float64(i) {
			t.Fatalf("cursor %d on B: %v", i, entry)
		}
	}
	// The bridge counts a publish when the broker call returns, which can
	// be after B has the message: poll the counters briefly.
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().BrokerPublished < burst && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := a.Stats(); st.BrokerPublished < burst {
		t.Fatalf("A published %d broker messages, want at least %d (one per update)", st.BrokerPublished, burst)
	}
	for b.Stats().BrokerDelivered < burst && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := b.Stats(); st.BrokerDelivered < burst {
		t.Fatalf("B got %d broker deliveries, want at least %d", st.BrokerDelivered, burst)
	}
}
