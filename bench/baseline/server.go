package baseline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relay-dev/relay/bridge"
)

// Keepalive and limits, as in gorilla's chat example (with the protocol's
// figures).
const (
	pingPeriod     = 25 * time.Second // ping every connection this often
	pongWait       = 60 * time.Second // close a connection silent this long
	maxMessageSize = 4096             // largest client message (1009 beyond)
	closeGrace     = 2 * time.Second  // wait for the client's close reply
)

// Errors returned by this package.
var (
	// ErrInvalidConfig is wrapped by New when a Config field is missing or
	// out of range.
	ErrInvalidConfig = errors.New("baseline: invalid config")
	// ErrStarted is returned by Start when called twice or after Shutdown.
	ErrStarted = errors.New("baseline: already started or shut down")
)

// Config configures a baseline node. Zero values mean the default named on
// each field.
type Config struct {
	// Addr is the listen address. Default "127.0.0.1:8080"; port 0 picks one.
	Addr string
	// Node is this node's ID, stamped on every frame. Required.
	Node string
	// AMQPURL is the RabbitMQ URL. Empty runs standalone.
	AMQPURL string
	// Exchange is the direct exchange shared with other nodes. Default
	// "relay.events" (bridge's default).
	Exchange string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// WriteTimeout bounds each write to a client. Default 10s.
	WriteTimeout time.Duration
	// SendQueue is how many frames may wait for a connection's write
	// goroutine; a connection whose queue is full is closed (1013).
	// Default 256.
	SendQueue int
}

func (c Config) withDefaults() (Config, error) {
	if c.Node == "" {
		return c, fmt.Errorf("%w: Node is required", ErrInvalidConfig)
	}
	if c.WriteTimeout < 0 || c.SendQueue < 0 {
		return c, fmt.Errorf("%w: negative WriteTimeout or SendQueue", ErrInvalidConfig)
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SendQueue == 0 {
		c.SendQueue = 256
	}
	return c, nil
}

// Server is one baseline node. Create it with New, run it with Start and
// release it with Shutdown (also when Start failed or was never called: a
// clustered Server holds a broker connection from New on).
type Server struct {
	cfg      Config
	log      *slog.Logger
	bridge   *bridge.AMQP // nil: standalone
	hub      hub
	upgrader websocket.Upgrader
	http     *http.Server

	conns, events         atomic.Int64
	messagesIn, framesOut atomic.Uint64
	slowConsumers         atomic.Uint64

	wg       sync.WaitGroup // the accept loop and both goroutines of every client
	draining atomic.Bool    // set with closing, read without the lock

	mu      sync.Mutex           // guards the fields below
	ln      net.Listener         // nil until Start
	closing bool                 // Shutdown has begun; no wg.Add after it
	clients map[*client]struct{} // every upgraded connection not yet gone
}

// New validates cfg and builds a node. With cfg.AMQPURL set it creates the
// bridge, which starts connecting in the background.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "baseline", "node", cfg.Node),
		clients: make(map[*client]struct{}),
		// Any origin, as the protocol's default. Buffer sizes are left at
		// zero, so gorilla reuses the buffers net/http already allocated.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	s.hub.events = make(map[string]*event)
	if cfg.AMQPURL != "" {
		br, err := bridge.New(bridge.Config{
			URL:      cfg.AMQPURL,
			Exchange: cfg.Exchange,
			Node:     cfg.Node,
			Logger:   cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		s.bridge = br
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events/{event}/ws", s.serveWS)
	mux.HandleFunc("GET /v1/stats", s.serveStats)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	return s, nil
}

// Bridge returns the node's bridge, nil when standalone (for tests that wait
// for the broker topology).
func (s *Server) Bridge() *bridge.AMQP { return s.bridge }

// Start listens on Config.Addr and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.closing {
		return ErrStarted
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("baseline: listen: %w", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve stopped", "err", err)
		}
	}()
	s.log.Info("baseline node listening (naive design: goroutines per connection, no batching)",
		"addr", ln.Addr().String(), "bridge", s.bridge != nil, "send_queue", s.cfg.SendQueue)
	s.log.Warn("running in OPEN mode: anyone can join any event as any user")
	return nil
}

// Addr is the address the node listens on, "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting, closes every connection with 1001, waits for
// their goroutines (up to ctx; then it cuts the remaining sockets and waits
// for those goroutines, which then end at once) and closes the bridge.
// It returns ctx's error if ctx ended first. Calling it again does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	s.draining.Store(true)
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()

	// 1. Stop accepting. Hijacked (WebSocket) connections are not waited
	// for here; http.Server no longer tracks them.
	err := s.http.Shutdown(ctx)
	// 2. Ask every connection to close; no new ones register from here on.
	for _, c := range clients {
		c.close(closeGoingAway, "node shutting down")
	}
	// 3. Wait for their goroutines, cutting sockets if ctx ends first.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range clients {
			_ = c.ws.Close()
		}
		<-done
	}
	// 4. The bridge last: leaves published during step 3 go out first.
	if s.bridge != nil {
		_ = s.bridge.Close()
	}
	s.log.Info("baseline node stopped")
	return err
}

// register adds c to the connection set and counts its two goroutines in
// s.wg, or returns false once Shutdown has begun.
func (s *Server) register(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.clients[c] = struct{}{}
	s.conns.Add(1)
	s.wg.Add(2)
	return true
}

func (s *Server) unregister(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	s.conns.Add(-1)
}

// serveWS checks the event and user IDs, upgrades and joins the event.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	eventID := r.PathValue("event")
	if !validID(eventID, 128) {
		http.Error(w, "invalid event ID: 1 to 128 of A-Z a-z 0-9 . _ : -", http.StatusBadRequest)
		return
	}
	user := r.URL.Query().Get("user")
	if !r.URL.Query().Has("user") {
		user = randomUserID()
	} else if !validID(user, 64) {
		http.Error(w, "invalid user ID: 1 to 64 of A-Z a-z 0-9 . _ : -", http.StatusBadRequest)
		return
	}
	if s.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // gorilla has answered with an HTTP error
	}
	c := &client{
		srv:      s,
		ws:       ws,
		user:     user,
		send:     make(chan []byte, s.cfg.SendQueue),
		quit:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	if !s.register(c) {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeGoingAway, "node shutting down"),
			time.Now().Add(s.cfg.WriteTimeout))
		_ = ws.Close()
		return
	}
	// Join before the goroutines start: the reader needs c.ev, and the
	// welcome must be the first frame in c.send.
	s.hub.join(s, eventID, c)
	go func() { defer s.wg.Done(); c.writePump() }()
	go func() { defer s.wg.Done(); c.readPump() }()
}

// Stats is a snapshot of a node's figures, as served at /v1/stats.
type Stats struct {
	Node            string `json:"node"`
	Conns           int64  `json:"conns"`
	Events          int64  `json:"events"`
	Goroutines      int    `json:"goroutines"`
	MessagesIn      uint64 `json:"messages_in"`
	FramesOut       uint64 `json:"frames_out"`
	SlowConsumers   uint64 `json:"slow_consumers"`
	HeapAlloc       uint64 `json:"heap_alloc_bytes"`
	HeapSys         uint64 `json:"heap_sys_bytes"`
	BrokerPublished uint64 `json:"broker_published"`
	BrokerDelivered uint64 `json:"broker_delivered"`
}

// Stats returns the node's current figures. FramesOut counts frames written
// to a socket (each one WriteMessage); SlowConsumers counts connections
// dropped because their send queue was full.
func (s *Server) Stats() Stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := Stats{
		Node:          s.cfg.Node,
		Conns:         s.conns.Load(),
		Events:        s.events.Load(),
		Goroutines:    runtime.NumGoroutine(),
		MessagesIn:    s.messagesIn.Load(),
		FramesOut:     s.framesOut.Load(),
		SlowConsumers: s.slowConsumers.Load(),
		HeapAlloc:     ms.HeapAlloc,
		HeapSys:       ms.HeapSys,
	}
	if s.bridge != nil {
		bs := s.bridge.Stats()
		st.BrokerPublished, st.BrokerDelivered = bs.Published, bs.Delivered
	}
	return st
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Stats())
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// validID reports whether id is 1 to max characters from A-Z a-z 0-9 . _ : -
// (PROTOCOL.md section 1).
func validID(id string, max int) bool {
	if len(id) == 0 || len(id) > max {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// randomUserID names a user who gave no ?user=.
func randomUserID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "anon-" + hex.EncodeToString(b[:])
}
