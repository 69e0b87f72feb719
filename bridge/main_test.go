package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	brokerOnce sync.Once
	brokerErr  error
)

// brokerURL returns RELAY_AMQP_URL (default the local broker) and fails the
// test, saying how to start one, if nothing answers there.
func brokerURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("RELAY_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	brokerOnce.Do(func() {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
		if err == nil {
			err = conn.Close()
		}
		brokerErr = err
	})
	if brokerErr != nil {
		where := url
		if uri, err := amqp.ParseURI(url); err == nil {
			where = net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
		}
		t.Fatalf("no RabbitMQ answers at %s (RELAY_AMQP_URL): %v\n"+
			"start one with `make broker` or `rabbitmq-server -detached` (about 10 s until port 5672 answers), "+
			"or point RELAY_AMQP_URL at one", where, brokerErr)
	}
	return url
}

// adminConn is a connection of the test's own, to inspect the broker.
func adminConn(t *testing.T, url string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("admin dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// testExchange returns a fresh exchange name, deleted when the test ends
// (after the bridges, which close in earlier cleanups).
func testExchange(t *testing.T, url string) string {
	t.Helper()
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "relay.test." + hex.EncodeToString(r[:])
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Errorf("delete exchange %s: %v", name, err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err == nil {
			err = ch.ExchangeDelete(name, false, false)
		}
		if err != nil {
			t.Errorf("delete exchange %s: %v", name, err)
		}
	})
	return name
}

// newBridge starts a bridge that closes when the test ends.
func newBridge(t *testing.T, cfg Config) *AMQP {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger, _ = newLogger(t)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { closeBridge(t, b) })
	return b
}

func closeBridge(t *testing.T, b *AMQP) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatalf("Close did not return within %v", waitFor)
	}
}

func waitReady(t *testing.T, bs ...*AMQP) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, b := range bs {
		if err := b.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady %s: %v (stats %+v)", b.cfg.Node, err, b.Stats())
		}
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// within fails the test if f does not return within d: it is how the tests
// show that a call does not block.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s blocked for more than %v", what, d)
	}
}

// logBuffer collects a logger's text output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) count(msg string) int {
	return strings.Count(l.String(), "msg=\""+msg+"\"")
}

var queueAttr = regexp.MustCompile(`queue=(amq\.gen-\S+)`)

// queues returns every queue name the log mentions, in order, once each.
func (l *logBuffer) queues() []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range queueAttr.FindAllStringSubmatch(l.String(), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return names
}

// newLogger returns a debug-level logger into a buffer that is printed if
// the test fails.
func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	l := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge log:\n%s", l.String())
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})), l
}

// sink records the bodies a deliver func receives.
type sink struct {
	mu  sync.Mutex
	got []string
}

func (s *sink) deliver(body []byte) {
	s.mu.Lock()
	s.got = append(s.got, string(body))
	s.mu.Unlock()
}

func (s *sink) bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// waitN waits until s holds at least n bodies and returns them.
func (s *sink) waitN(t *testing.T, n int) []string {
	t.Helper()
	eventually(t, fmt.Sprintf("%d deliveries", n), func() bool { return len(s.bodies()) >= n })
	return s.bodies()
}

// queueCode asks the broker, from another connection, about queue name:
// 200 if it is there and not exclusive, 405 (RESOURCE_LOCKED) while it is
// another connection's exclusive queue, 404 (NOT_FOUND) once it is gone.
func queueCode(t *testing.T, conn *amqp.Connection, name string) int {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("admin channel: %v", err)
	}
	_, err = ch.QueueDeclarePassive(name, false, true, true, false, nil)
	if err == nil {
		_ = ch.Close()
		return 200
	}
	var e *amqp.Error
	if !errors.As(err, &e) {
		t.Fatalf("passive declare %s: %v", name, err)
	}
	return e.Code
}

// routed reports whether a message for key on exchange reaches any queue: it
// publishes a mandatory message with confirms, and an unroutable one comes
// back as basic.return before its ack.
func routed(t *testing.T, conn *amqp.Connection, exchange, key string) bool {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("admin channel: %v", err)
	}
	defer ch.Close()
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, amqp.Publishing{
		Headers: amqp.Table{headerNode: "admin"},
		Body:    []byte("probe"),
	})
	if err != nil {
		t.Fatalf("probe publish: %v", err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("probe not confirmed: ok=%v err=%v", ok, err)
	}
	select {
	case <-returns:
		return false
	default:
		return true
	}
}
