package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/bridge"
	"github.com/relay-dev/relay/poller"
)

// Server is one relay node.
type Server struct {
	cfg      Config
	poller   *poller.Server
	registry *registry
	sessions *sessionSet
	workers  []*worker
	origins  map[string]bool // nil: any origin

	conns    atomic.Int64 // WebSocket connections, reserved before the upgrade
	draining atomic.Bool
	stats    counters

	mu      sync.Mutex // guards started, stop
	started bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

// counters are the node's running totals, served at /v1/stats.
type counters struct {
	events        atomic.Int64
	messagesIn    atomic.Uint64
	batches       atomic.Uint64
	remoteBatches atomic.Uint64
	framesOut     atomic.Uint64
}

// New builds a node from cfg; Start runs it.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Node == "" {
		return nil, errors.New("server: Config.Node is required")
	}
	srv := &Server{cfg: cfg, sessions: newSessionSet(), stop: make(chan struct{})}
	srv.registry = newRegistry(srv)
	for range cfg.Workers {
		srv.workers = append(srv.workers, newWorker(srv))
	}
	if len(cfg.AllowedOrigins) > 0 {
		srv.origins = make(map[string]bool)
		for _, o := range cfg.AllowedOrigins {
			srv.origins[strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))] = true
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", srv.serveHealth)
	mux.HandleFunc("GET /v1/stats", srv.serveStats)
	// Event paths bypass ServeMux, which would redirect an empty event ID
	// and refuse an escaped slash where the protocol asks for 400.
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/events/") {
			srv.serveEvents(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv.poller = poller.New(poller.Config{
		Addr:       cfg.Addr,
		Handler:    routes,
		Loops:      cfg.Loops,
		MaxSockets: cfg.MaxConns + cfg.MaxConns/20 + 1024,
		MaxFrame:   cfg.MaxMessage,
		// nbio's own cap only backs up MaxPending, which workers enforce
		// with a close frame before nbio would have to drop anyone.
		MaxWriteBuffer: 2*cfg.MaxPending + 1<<20,
		MaxPending:     cfg.MaxPending,
		Logger:         cfg.Logger,
	})
	return srv, nil
}

// Start listens and starts the workers and the liveness sweep.
func (srv *Server) Start() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.started {
		return errors.New("server: already started")
	}
	if err := srv.poller.Start(); err != nil {
		return err
	}
	srv.started = true
	for _, w := range srv.workers {
		srv.wg.Add(1)
		go func() { defer srv.wg.Done(); w.run(srv.stop) }()
	}
	srv.wg.Add(1)
	go func() { defer srv.wg.Done(); srv.sweep(srv.stop) }()
	mode := "token"
	if len(srv.cfg.JWTSecret) == 0 {
		mode = "open"
	}
	srv.cfg.Logger.Info("relay node listening", "addr", srv.Addr(), "node", srv.cfg.Node,
		"mode", mode, "bridge", srv.cfg.Bridge != nil, "tick", srv.cfg.Tick)
	if mode == "open" {
		srv.cfg.Logger.Warn("running in OPEN mode: anyone can join any event as any user; set RELAY_JWT_SECRET or -jwt-secret-file for token mode")
	}
	return nil
}

// Addr is the address the node listens on.
func (srv *Server) Addr() string { return srv.poller.Addr() }

// Shutdown drains the node: it refuses new connections, closes every
// connection with 1001 so clients reconnect elsewhere, waits for them (up to
// ctx), then stops the workers and the event loops.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !srv.started {
		return nil
	}
	srv.started = false
	srv.draining.Store(true)
	var buf []*session
	for i := 0; i < sessionShards; i++ {
		buf = srv.sessions.each(i, buf, func(s *session) {
			s.close(CloseGoingAway, "node shutting down: reconnect")
		})
	}
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
wait:
	for srv.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait // what is left is closed by the poller's shutdown
		case <-poll.C:
		}
	}
	close(srv.stop)
	srv.wg.Wait()
	return srv.poller.Shutdown(ctx)
}

func (srv *Server) serveWS(w http.ResponseWriter, r *http.Request, eventID string) {
	if !ValidEventID(eventID) {
		http.Error(w, "event ID must be 1 to 128 characters from A-Z a-z 0-9 . _ : -", http.StatusBadRequest)
		return
	}
	if status, msg := poller.CheckHandshake(r); status != 0 {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, msg, status)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && srv.origins != nil && !srv.origins[strings.ToLower(origin)] {
		http.Error(w, "origin not allowed: add it to -allowed-origins", http.StatusForbidden)
		return
	}
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		http.Error(w, "malformed query string: "+err.Error(), http.StatusBadRequest)
		return
	}
	id, herr := srv.authenticate(r, eventID)
	if herr != nil {
		http.Error(w, herr.msg, herr.status)
		return
	}
	if srv.draining.Load() {
		http.Error(w, "node draining: connect to another node", http.StatusServiceUnavailable)
		return
	}
	if srv.conns.Add(1) > int64(srv.cfg.MaxConns) {
		srv.conns.Add(-1)
		http.Error(w, "node full: connect to another node or raise -max-conns", http.StatusServiceUnavailable)
		return
	}
	s := &session{srv: srv, user: id.user, eventID: eventID, expires: id.expires, index: -1}
	c, err := srv.poller.Upgrade(w, r, s)
	if err != nil {
		srv.conns.Add(-1) // the upgrader has answered the request
		return
	}
	s.conn = c
	srv.sessions.add(s)
	srv.registry.join(s)
	c.Start()
}

// serveEvents routes /v1/events/{event}/ws, cutting the event ID out of the
// path itself.
func (srv *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/events/")
	eventID, ok := strings.CutSuffix(rest, "/ws")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET to open a WebSocket", http.StatusMethodNotAllowed)
		return
	}
	srv.serveWS(w, r, eventID)
}

func (srv *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if srv.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Stats is a snapshot of a node's figures, as served at /v1/stats.
type Stats struct {
	Node          string `json:"node"`
	Conns         int64  `json:"conns"`
	Events        int64  `json:"events"`
	Goroutines    int    `json:"goroutines"`
	MessagesIn    uint64 `json:"messages_in"`
	Batches       uint64 `json:"batches"`
	RemoteBatches uint64 `json:"remote_batches"`
	FramesOut     uint64 `json:"frames_out"`
	RemoteDropped uint64 `json:"remote_dropped"`
	HeapAlloc     uint64 `json:"heap_alloc_bytes"`
	HeapSys       uint64 `json:"heap_sys_bytes"`
	// Broker is the bridge's counters; nil when standalone.
	Broker *bridge.Stats `json:"broker,omitempty"`
}

// Stats returns the node's current figures.
func (srv *Server) Stats() Stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := Stats{
		Node:          srv.cfg.Node,
		Conns:         srv.conns.Load(),
		Events:        srv.stats.events.Load(),
		Goroutines:    runtime.NumGoroutine(),
		MessagesIn:    srv.stats.messagesIn.Load(),
		Batches:       srv.stats.batches.Load(),
		RemoteBatches: srv.stats.remoteBatches.Load(),
		FramesOut:     srv.stats.framesOut.Load(),
		HeapAlloc:     ms.HeapAlloc,
		HeapSys:       ms.HeapSys,
	}
	for _, w := range srv.workers {
		st.RemoteDropped += w.dropped.Load()
	}
	if br, ok := srv.cfg.Bridge.(interface{ Stats() bridge.Stats }); ok {
		bs := br.Stats()
		st.Broker = &bs
	}
	return st
}

func (srv *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(srv.Stats())
}
