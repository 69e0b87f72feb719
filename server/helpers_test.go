package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/codec"
	"github.com/relay-dev/relay/server"
)

// startNode runs a node on a free loopback port until the test ends.
func startNode(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Node == "" {
		cfg.Node = "test-node"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

func wsURL(srv *server.Server, event string, query url.Values) string {
	u := url.URL{Scheme: "ws", Host: srv.Addr(), Path: "/v1/events/" + event + "/ws", RawQuery: query.Encode()}
	return u.String()
}

// welcome is the first frame of every connection.
type welcome struct {
	T       string   `msgpack:"t"`
	Me      string   `msgpack:"me"`
	Event   string   `msgpack:"event"`
	Node    string   `msgpack:"node"`
	Members []string `msgpack:"members"`
}

// batch is a server batch as a client sees it.
type batch struct {
	T     string   `msgpack:"t"`
	N     string   `msgpack:"n"`
	Seq   uint64   `msgpack:"seq"`
	TS    int64    `msgpack:"ts"`
	Cur   [][]any  `msgpack:"cur"`
	Act   [][]any  `msgpack:"act"`
	Join  []string `msgpack:"join"`
	Leave []string `msgpack:"leave"`
}

// client is a test member of one event, on a real WebSocket client.
type client struct {
	t       *testing.T
	conn    *websocket.Conn
	welcome welcome
}

// dial joins event as user (open mode) and reads the welcome.
func dial(t *testing.T, srv *server.Server, event, user string) *client {
	t.Helper()
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	return dialURL(t, wsURL(srv, event, q), nil)
}

func dialURL(t *testing.T, u string, h http.Header) *client {
	t.Helper()
	return dialWith(t, websocket.DefaultDialer, u, h)
}

// dialWith is dialURL with a dialer of the test's choosing (buffer sizes,
// socket options).
func dialWith(t *testing.T, d *websocket.Dialer, u string, h http.Header) *client {
	t.Helper()
	conn, resp, err := d.Dial(u, h)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", u, err, status)
	}
	c := &client{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.Close() })
	mt, data := c.read()
	if mt != websocket.BinaryMessage {
		t.Fatalf("first frame type %d, want binary", mt)
	}
	if err := msgpack.Unmarshal(data, &c.welcome); err != nil || c.welcome.T != "welcome" {
		t.Fatalf("first frame is not a welcome: %v %x", err, data)
	}
	return c
}

func (c *client) read() (int, []byte) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return mt, data
}

// next reads the next batch.
func (c *client) next() batch {
	c.t.Helper()
	_, data := c.read()
	if err := codec.Validate(data, codec.MaxDepth+3); err != nil {
		c.t.Fatalf("server frame fails validation: %v", err)
	}
	var b batch
	if err := msgpack.Unmarshal(data, &b); err != nil || b.T != "batch" {
		c.t.Fatalf("not a batch: %v %x", err, data)
	}
	return b
}

// until reads batches until ok says stop, failing after 5s.
func (c *client) until(ok func(batch) bool) []batch {
	c.t.Helper()
	var seen []batch
	for {
		b := c.next()
		seen = append(seen, b)
		if ok(b) {
			return seen
		}
	}
}

// quiet asserts no frame arrives within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, data, err := c.conn.ReadMessage()
	if err == nil {
		var b batch
		_ = msgpack.Unmarshal(data, &b)
		c.t.Fatalf("unexpected frame: %+v", b)
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("read: %v", err)
	}
}

func (c *client) send(msg []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) cursor(x, y float64) { c.send(codec.AppendCursor(nil, x, y)) }

func (c *client) action(v any) {
	d, err := msgpack.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(codec.AppendAction(nil, d))
}

// closed waits for the server's close frame and returns its code and reason.
func (c *client) closed() (int, string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// expectClose asserts the server closes c with code and a reason that
// mentions want.
func (c *client) expectClose(code int, want string) {
	c.t.Helper()
	got, reason := c.closed()
	if got != code || !strings.Contains(reason, want) {
		c.t.Fatalf("closed with %d %q, want %d with a reason containing %q", got, reason, code, want)
	}
}

// httpStatus makes a request and returns its status and body.
func httpStatus(t *testing.T, u string, h http.Header) (int, string) {
	t.Helper()
	resp, body := httpGet(t, u, h)
	return resp.StatusCode, body
}

// noRedirects answers with the first response, as a WebSocket client does.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// httpGet makes a request and returns the response, its body already read
// and closed. If the server upgrades, the body is "" and the connection is
// closed at once.
func httpGet(t *testing.T, u string, h http.Header) (*http.Response, string) {
	t.Helper()
	u = strings.Replace(u, "ws://", "http://", 1)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, "" // the body is the WebSocket stream
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// upgradeHeaders are the headers of a valid WebSocket handshake.
func upgradeHeaders() http.Header {
	return http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version": {"13"},
	}
}

// curOf finds user's cursor in b.
func curOf(b batch, user string) (x, y float64, ok bool) {
	for _, c := range b.Cur {
		if len(c) == 3 && c[0] == user {
			return num(c[1]), num(c[2]), true
		}
	}
	return 0, 0, false
}

func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case float32:
		return float64(n)
	case int8:
		return float64(n)
	case int16:
		return float64(n)
	case int32:
		return float64(n)
	case int64:
		return float64(n)
	case uint8:
		return float64(n)
	case uint16:
		return float64(n)
	case uint32:
		return float64(n)
	case uint64:
		return float64(n)
	}
	return -1
}
