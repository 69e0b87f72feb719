package poller

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type echoHandler struct{}

func (echoHandler) OnFrame(c *Conn, _, _ bool, data []byte) {
	buf := make([]byte, MaxHeaderLen+len(data))
	copy(buf[MaxHeaderLen:], data)
	_ = c.WriteFrame(PrepareFrame(buf))
}
func (echoHandler) OnClose(*Conn, error) {}

func startEcho(t *testing.T, cfg Config) *Server {
	t.Helper()
	var s *Server
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, msg := CheckHandshake(r); status != 0 {
			http.Error(w, msg, status)
			return
		}
		if c, err := s.Upgrade(w, r, echoHandler{}); err == nil {
			c.Start()
		}
	})
	s = New(cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// Regression: nbio's listener arms the handshake deadline just after it
// hands a socket to an event loop; a loop that upgraded the socket first
// had its clearing undone, and busy ramps lost connections
// HandshakeTimeout later.
func TestUpgradedConnectionsOutliveTheHandshakeTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := startEcho(t, Config{HandshakeTimeout: timeout})
	const n = 200
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/", nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	time.Sleep(4 * timeout)
	for i, c := range conns {
		if c == nil {
			continue
		}
		_ = c.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, []byte("still here?")); err != nil {
			t.Fatalf("conn %d: write: %v", i, err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "still here?" {
			t.Fatalf("conn %d dropped after the handshake timeout: %q %v", i, got, err)
		}
		_ = c.Close()
	}
}

func TestStartFailsFastWhenThePortIsTaken(t *testing.T) {
	s := startEcho(t, Config{})
	other := New(Config{Addr: s.Addr(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	done := make(chan error, 1)
	go func() { done <- other.Start() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "-addr") {
			t.Fatalf("Start on a taken port: %v, want an error naming -addr", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start hangs when the port is taken")
	}
}

// Regression: with handlers run on the event loop, a request with
// Connection: close made nbhttp run its close job under its parser's lock,
// in line, and the loop stalled for every socket it served.
func TestConnectionCloseRequestsDoNotStallTheLoop(t *testing.T) {
	s := startEcho(t, Config{Loops: 1})
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 50 {
		resp, err := client.Get("http://" + s.Addr() + "/plain")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestOversizedRequestHeadIsDropped(t *testing.T) {
	s := startEcho(t, Config{MaxRequestHead: 4096})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10)))
	if _, err := io.ReadAll(c); err != nil {
		if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			t.Fatal("an oversized request head was still being buffered")
		}
	}
}

func TestPlainRequestsStillTimeOut(t *testing.T) {
	s := startEcho(t, Config{HandshakeTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a socket that never sent a request got data")
	} else if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatal("a socket that never sent a request was not closed within the handshake timeout")
	}
}
