package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/relay-dev/relay/bridge"
	"github.com/relay-dev/relay/server"
)

// amqpURL is the broker the cluster tests use. They fail, saying how to get
// one, when it does not answer: a skipped cluster test would hide a broken
// bridge.
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

// cluster is nodes sharing a private exchange on the real broker.
type cluster struct {
	url      string
	exchange string
	nodes    []*server.Server
	bridges  []*bridge.AMQP
}

func newCluster(t *testing.T, n int, cfg server.Config) *cluster {
	t.Helper()
	c := &cluster{url: amqpURL(t)}
	var r [6]byte
	_, _ = rand.Read(r[:])
	c.exchange = "relay.test." + hex.EncodeToString(r[:])
	t.Cleanup(func() { deleteExchange(c.url, c.exchange) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range n {
		node := fmt.Sprintf("node-%c", 'A'+i)
		br, err := bridge.New(bridge.Config{URL: c.url, Exchange: c.exchange, Node: node, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = br.Close() })
		nc := cfg
		nc.Node = node
		nc.Bridge = br
		c.nodes = append(c.nodes, startNode(t, nc))
		c.bridges = append(c.bridges, br)
	}
	return c
}

// ready waits until every bridge has declared, bound and consumed all of
// its subscriptions.
func (c *cluster) ready(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, br := range c.bridges {
		if err := br.WaitReady(ctx); err != nil {
			t.Fatalf("bridge not ready: %v", err)
		}
	}
}

func deleteExchange(url, name string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_ = ch.ExchangeDelete(name, false, false)
	}
}

// queueState asks the broker about a queue from a connection of the test's
// own: 404 once it is gone, 405 (exclusive to its node) while it exists.
func queueState(t *testing.T, url, name string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclarePassive(name, false, true, true, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	if err == nil {
		_ = ch.Close()
		return 200
	}
	t.Fatalf("passive declare: %v", err)
	return 0
}

func TestClusterEveryActionOnceAtEveryMemberOnBothNodes(t *testing.T) {
	c := newCluster(t, 2, server.Config{Tick: 20 * time.Millisecond})
	a1 := dial(t, c.nodes[0], "mixer", "a1")
	a2 := dial(t, c.nodes[0], "mixer", "a2")
	b1 := dial(t, c.nodes[1], "mixer", "b1")
	c.ready(t)

	const each = 30
	for i := range each {
		a1.action(fmt.Sprintf("a1-%d", i))
		b1.action(fmt.Sprintf("b1-%d", i))
	}
	for _, m := range []*client{a1, a2, b1} {
		got := map[string][]string{}
		count := 0
		m.until(func(bt batch) bool {
			for _, act := range bt.Act {
				user := act[0].(string)
				got[user] = append(got[user], act[1].(string))
				count++
			}
			return count >= 2*each
		})
		m.quiet(300 * time.Millisecond) // no echo duplicates trail behind
		for _, user := range []string{"a1", "b1"} {
			if len(got[user]) != each {
				t.Fatalf("%s got %d actions from %s, want %d", m.welcome.Me, len(got[user]), user, each)
			}
			for i, v := range got[user] {
				if want := fmt.Sprintf("%s-%d", user, i); v != want {
					t.Fatalf("%s: action %d from %s is %q, want %q", m.welcome.Me, i, user, v, want)
				}
			}
		}
	}
}

func TestClusterBatchesKeepTheirOriginNodeAndSeq(t *testing.T) {
	c := newCluster(t, 2, server.Config{Tick: 20 * time.Millisecond})
	a := dial(t, c.nodes[0], "lounge", "a")
	b := dial(t, c.nodes[1], "lounge", "b")
	c.ready(t)
	a.cursor(10, 20)
	seen := b.until(func(bt batch) bool { _, _, ok := curOf(bt, "a"); return ok })
	last := seen[len(seen)-1]
	if last.N != "node-A" || last.Seq == 0 {
		t.Fatalf("a's cursor reached b in batch n=%q seq=%d, want n=node-A", last.N, last.Seq)
	}
}

func TestClusterQueuesExistOnlyWhereMembersAre(t *testing.T) {
	c := newCluster(t, 2, server.Config{Tick: 20 * time.Millisecond})
	a := dial(t, c.nodes[0], "solo", "a")
	c.ready(t)
	qa := c.bridges[0].QueueName("solo")
	if qa == "" {
		t.Fatal("node A has a member of solo but no queue for it")
	}
	if qb := c.bridges[1].QueueName("solo"); qb != "" {
		t.Fatalf("node B has no member of solo but holds queue %s", qb)
	}
	if got := queueState(t, c.url, qa); got != amqp.ResourceLocked {
		t.Fatalf("passive declare of A's queue: %d, want %d (exists, exclusive)", got, amqp.ResourceLocked)
	}

	_ = a.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.bridges[0].QueueName("solo") != "" || queueState(t, c.url, qa) != amqp.NotFound {
		if time.Now().After(deadline) {
			t.Fatalf("queue %s still there after the last member left", qa)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
