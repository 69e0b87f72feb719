package baseline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/relay-dev/relay/codec"
)

// waitFor bounds every wait in these tests.
const waitFor = 5 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start runs a node on a free port until the test ends.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Node == "" {
		cfg.Node = "base-1"
	}
	cfg.Logger = quiet
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

type peer struct {
	t  *testing.T
	ws *websocket.Conn
}

// frame is one server frame, decoded.
type frame map[string]any

func wsURL(s *Server, event, user string) string {
	u := "ws://" + s.Addr() + "/v1/events/" + event + "/ws"
	if user != "" {
		u += "?user=" + url.QueryEscape(user)
	}
	return u
}

// join connects user to event and returns the client with its welcome read.
func join(t *testing.T, s *Server, event, user string) (*peer, frame) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(wsURL(s, event, user), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	c := &peer{t: t, ws: ws}
	w := c.next()
	if w["t"] != "welcome" || w["me"] != user || w["event"] != event {
		t.Fatalf("first frame of %s: %v, want its welcome", user, w)
	}
	return c, w
}

func (c *peer) next() frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(waitFor))
	mt, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if mt != websocket.BinaryMessage {
		c.t.Fatalf("message type %d, want binary", mt)
	}
	var f frame
	if err := msgpack.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("decode %x: %v", data, err)
	}
	return f
}

// until reads frames until ok accepts one.
func (c *peer) until(ok func(frame) bool) frame {
	c.t.Helper()
	for {
		if f := c.next(); ok(f) {
			return f
		}
	}
}

// waitConns waits until the node counts n connections (a connection is
// counted until it has left its event).
func waitConns(t *testing.T, s *Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for s.Stats().Conns != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want %d", s.Stats().Conns, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *peer) send(msg []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// closed reads until the server's close frame and returns its code and text.
func (c *peer) closed() (int, string) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(waitFor))
	for {
		_, _, err := c.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		if err != nil {
			c.t.Fatalf("want a close frame, got %v", err)
		}
	}
}

// only checks that f is a batch from node with seq and exactly one entry,
// under key, and returns that entry.
func only(t *testing.T, f frame, node string, seq uint64, key string) any {
	t.Helper()
	if f["t"] != "batch" || f["n"] != node || num(f["seq"]) != float64(seq) {
		t.Fatalf("frame %v, want batch n=%s seq=%d", f, node, seq)
	}
	if ts := num(f["ts"]); time.Since(time.UnixMilli(int64(ts))).Abs() > time.Minute {
		t.Fatalf("ts %v is not now", ts)
	}
	list, _ := f[key].([]any)
	if len(list) != 1 || len(f) != 5 {
		t.Fatalf("frame %v, want exactly one %s entry and nothing else", f, key)
	}
	return list[0]
}

func num(v any) float64 {
	switch n := v.(type) {
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
	case float32:
		return float64(n)
	case float64:
		return n
	}
	return -1
}

func action(t *testing.T, v any) []byte {
	t.Helper()
	d, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return codec.AppendAction(nil, d)
}

func TestActionReachesOtherMemberAsOneEntryBatch(t *testing.T) {
	s := start(t, Config{})
	alice, w := join(t, s, "lobby", "alice")
	if w["node"] != "base-1" || len(w["members"].([]any)) != 1 {
		t.Fatalf("alice's welcome %v", w)
	}
	only(t, alice.next(), "base-1", 1, "join")
	bob, w := join(t, s, "lobby", "bob")
	if m := w["members"].([]any); len(m) != 2 || m[0] != "alice" || m[1] != "bob" {
		t.Fatalf("bob's welcome members %v, want [alice bob]", m)
	}
	only(t, bob.next(), "base-1", 2, "join")
	only(t, alice.next(), "base-1", 2, "join")

	alice.send(action(t, map[string]any{"emoji": "wave"}))
	for _, c := range []*peer{bob, alice} { // the sender gets it too
		entry := only(t, c.next(), "base-1", 3, "act").([]any)
		if entry[0] != "alice" || entry[1].(map[string]any)["emoji"] != "wave" {
			t.Fatalf("act entry %v", entry)
		}
	}
}

// The point of the baseline: one frame per update, never coalesced.
func TestCursorBurstArrivesAsOneFrameEach(t *testing.T) {
	s := start(t, Config{})
	alice, _ := join(t, s, "lobby", "alice")
	bob, _ := join(t, s, "lobby", "bob")
	alice.until(func(f frame) bool { return f["join"] != nil && f["join"].([]any)[0] == "bob" })
	bob.next() // bob's own join, seq 2

	const burst = 10
	for i := range burst {
		alice.send(codec.AppendCursor(nil, float64(i), 0.5))
	}
	for i := range burst {
		entry := only(t, bob.next(), "base-1", uint64(3+i), "cur").([]any)
		if entry[0] != "alice" || num(entry[1]) != float64(i) || num(entry[2]) != 0.5 {
			t.Fatalf("cursor %d: %v", i, entry)
		}
	}
	alice.send(action(t, "done")) // the next frame: nothing else was sent
	only(t, bob.next(), "base-1", 3+burst, "act")
	if st := s.Stats(); st.MessagesIn != burst+1 || st.Conns != 2 || st.Events != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJoinLeavePerUser(t *testing.T) {
	s := start(t, Config{})
	alice, _ := join(t, s, "lobby", "alice")
	only(t, alice.next(), "base-1", 1, "join")
	bob1, _ := join(t, s, "lobby", "bob")
	only(t, alice.next(), "base-1", 2, "join")
	bob2, w := join(t, s, "lobby", "bob") // a second tab: no join
	if m := w["members"].([]any); len(m) != 2 {
		t.Fatalf("members %v, want alice and bob once each", m)
	}
	_ = bob2.ws.Close() // not bob's last connection: no leave
	waitConns(t, s, 2)
	_ = bob1.ws.Close()
	if u := only(t, alice.next(), "base-1", 3, "leave"); u != "bob" {
		t.Fatalf("leave %v, want bob", u)
	}
}

func TestEventEmptiedStartsNewStream(t *testing.T) {
	s := start(t, Config{})
	alice, _ := join(t, s, "lobby", "alice")
	only(t, alice.next(), "base-1", 1, "join")
	_ = alice.ws.Close()
	waitConns(t, s, 0)
	if n := s.Stats().Events; n != 0 {
		t.Fatalf("%d events after the last member left, want 0", n)
	}
	bob, _ := join(t, s, "lobby", "bob")
	only(t, bob.next(), "base-1", 1, "join")
}

func TestProtocolViolationsClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		mt   int
		msg  []byte
		code int
	}{
		{"text frame", websocket.TextMessage, []byte(`{"t":"cur"}`), 1003},
		{"unknown t", websocket.BinaryMessage, []byte{0x81, 0xa1, 't', 0xa1, 'z'}, 1007},
		{"not a map", websocket.BinaryMessage, []byte{0x01}, 1007},
		{"too big", websocket.BinaryMessage, bytes.Repeat([]byte{0}, maxMessageSize+1), 1009},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Config{})
			c, _ := join(t, s, "lobby", "eve")
			if err := c.ws.WriteMessage(tc.mt, tc.msg); err != nil {
				t.Fatal(err)
			}
			if code, _ := c.closed(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
}

func TestBadIDsAre400(t *testing.T) {
	s := start(t, Config{})
	for _, u := range []string{wsURL(s, "bad%20event", "alice"), wsURL(s, "lobby", "bad user")} {
		_, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: err %v, response %v, want 400", u, err, resp)
		}
		_ = resp.Body.Close()
	}
}

func TestSlowConsumerIsDropped(t *testing.T) {
	s := &Server{}
	c := &client{srv: s, send: make(chan []byte, 1), quit: make(chan struct{})}
	c.queue([]byte{1})
	c.queue([]byte{2}) // queue full
	if !c.closing.Load() || c.closeCode != 1013 || s.slowConsumers.Load() != 1 {
		t.Fatalf("closing %v code %d slow %d, want the connection dropped with 1013",
			c.closing.Load(), c.closeCode, s.slowConsumers.Load())
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	s := start(t, Config{})
	c, _ := join(t, s, "lobby", "alice")
	go func() { _ = s.Shutdown(context.Background()) }()
	if code, _ := c.closed(); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
}

func fetchStats(t *testing.T, addr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStatsEndpoint(t *testing.T) {
	s := start(t, Config{Node: "base-stats"})
	alice, _ := join(t, s, "lobby", "alice")
	alice.next()
	alice.send(codec.AppendCursor(nil, 1, 2))
	alice.next()
	// frames_out counts after the writer goroutine's write returns, which
	// can be just after the client has read the frame: poll briefly.
	var st map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; {
		st = fetchStats(t, s.Addr())
		if f, _ := st["frames_out"].(float64); f >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range []string{"node", "conns", "events", "goroutines", "messages_in", "frames_out",
		"heap_alloc_bytes", "heap_sys_bytes", "broker_published", "broker_delivered"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats lack %q: %v", k, st)
		}
	}
	if st["node"] != "base-stats" || st["conns"] != 1.0 || st["messages_in"] != 1.0 || st["frames_out"].(float64) < 3 {
		t.Fatalf("stats %v", st)
	}
}
