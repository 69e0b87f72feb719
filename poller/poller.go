package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// Config sets up the event loops and the upgrade. Zero values take the
// defaults named on each field.
type Config struct {
	// Addr is the TCP address to listen on; port 0 picks a free port.
	Addr string
	// Handler serves plain HTTP requests, including the ones that upgrade.
	Handler http.Handler
	// Loops is the number of event loops. Default: the number of CPUs.
	Loops int
	// MaxSockets caps the sockets the engine accepts (HTTP and WebSocket).
	// Keep it above the WebSocket limit so that refusals can still be
	// answered with an HTTP status. Default: 1,050,000.
	MaxSockets int
	// MaxFrame is the largest single frame payload accepted; a larger one
	// is refused with close code 1009 before it is read. Default: 4096.
	MaxFrame int
	// ReadBufferSize is the per-loop read buffer. Default: 64 KiB.
	ReadBufferSize int
	// MaxWriteBuffer is the hard cap of output nbio buffers for one
	// connection before it drops it. Callers enforce a softer cap with
	// Conn.Pending. Default: 4 MiB.
	MaxWriteBuffer int
	// HandshakeTimeout closes sockets that have not finished an HTTP
	// request in this time. Default: 10s.
	HandshakeTimeout time.Duration
	// MaxRequestHead caps the bytes of an HTTP request (line, headers and
	// body) buffered before it completes; a longer one is dropped.
	// Default: 64 KiB.
	MaxRequestHead int
	// MaxPending caps a connection's unsent output; a peer that makes the
	// poller answer (pongs) past it is closed with 1013. Default: 1 MiB.
	MaxPending int
	// HandlerWorkers is the size of the pool that runs HTTP handlers.
	// Default: 4 per CPU.
	HandlerWorkers int
	// CloseGrace is how long a connection closed with CloseWith waits for
	// the peer's close frame before the socket is closed. Default: 2s.
	CloseGrace time.Duration
	// Logger receives nbio's warnings and errors. Default: slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Loops <= 0 {
		c.Loops = runtime.NumCPU()
	}
	if c.MaxSockets <= 0 {
		c.MaxSockets = 1_050_000
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 4096
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 64 << 10
	}
	if c.MaxWriteBuffer <= 0 {
		c.MaxWriteBuffer = 4 << 20
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxRequestHead <= 0 {
		c.MaxRequestHead = 64 << 10
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 20
	}
	if c.HandlerWorkers <= 0 {
		c.HandlerWorkers = 4 * runtime.NumCPU()
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Handler == nil {
		c.Handler = http.NotFoundHandler()
	}
}

// Handler receives what happens on one upgraded connection. Its methods run
// on the connection's event loop and must not block.
type Handler interface {
	// OnFrame gets each data frame as it arrives: binary is false for text
	// frames (and their continuations), fin marks a message's last frame.
	// data is valid only during the call.
	OnFrame(c *Conn, binary, fin bool, data []byte)
	// OnClose runs once when the connection is gone, whoever closed it.
	OnClose(c *Conn, err error)
}

// Server is a set of event loops serving HTTP and WebSocket connections.
type Server struct {
	cfg    Config
	engine *nbhttp.Engine

	mu   sync.Mutex
	addr string
	ln   net.Listener // bound by Start before nbio starts, handed to it by listen

	handlers *executor // runs HTTP handlers and close jobs

	// Upgraded sockets whose handshake deadline is cleared once more; see
	// clearAgain.
	clearMu    sync.Mutex
	clearNext  []*nbio.Conn
	clearLater []*nbio.Conn
	stop       chan struct{}
	wg         sync.WaitGroup
}

var setLoggerOnce sync.Once

// New builds a server; Start starts it.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, stop: make(chan struct{}), handlers: newExecutor(cfg.HandlerWorkers)}
	setLoggerOnce.Do(func() { useSlog(cfg.Logger) })

	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Network:            "tcp",
		Addrs:              []string{cfg.Addr},
		Handler:            s.closeLater(cfg.Handler),
		NPoller:            cfg.Loops,
		MaxLoad:            cfg.MaxSockets,
		ReadBufferSize:     cfg.ReadBufferSize,
		MaxWriteBufferSize: cfg.MaxWriteBuffer,
		KeepaliveTime:      cfg.HandshakeTimeout,
		ReadLimit:          cfg.MaxRequestHead,
		MaxHTTPBodySize:    cfg.MaxRequestHead,
		// HTTP handlers (the upgrade with its token check) and close jobs
		// run on a small fixed pool, never on the event loop: nbhttp runs
		// a close job while it holds its parser's lock, and a job run in
		// line would take that lock again and stall the loop for good.
		// WebSocket frames do not go through it: Conn.Parse runs on the
		// event loop, in order, with no goroutine per message.
		ServerExecutor: s.handlers.run,
		Listen:         s.listen,
	})
	s.engine.OnWrittenSize(onWritten)
	s.markHandoff()
	return s
}

// closeLater serves requests that ask to close the connection (HTTP/1.0,
// Connection: close) without letting nbhttp close it the moment the handler
// returns: nbhttp then drops whatever response bytes are still queued, and
// a client now and then got no answer. The socket is closed a second later
// instead, by which time the response is on its way; a client that asked
// to close does so itself as soon as it has the response.
func (s *Server) closeLater(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.Close {
			h.ServeHTTP(w, r)
			return
		}
		r.Close = false
		h.ServeHTTP(w, r)
		_, _, nb, ok := socketOf(w)
		if !ok {
			return
		}
		if _, upgraded := nb.Session().(*Conn); !upgraded {
			s.engine.AfterFunc(time.Second, func() { _ = nb.Close() })
		}
	})
}

// listen hands nbio the listener Start bound.
func (s *Server) listen(network, addr string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil, errors.New("poller: listener already used")
	}
	ln := s.ln
	s.ln = nil
	return ln, nil
}

// Start opens the listener and starts the event loops.
func (s *Server) Start() error {
	// Bind first: nbio hangs in its own clean-up when its listener fails
	// after the event loops started.
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("poller: listen on %s: %w (is another process using the port? pick another with -addr)", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	s.mu.Unlock()
	s.handlers.start()
	if err := s.engine.Start(); err != nil {
		_ = ln.Close()
		s.handlers.stop()
		return fmt.Errorf("poller: start event loops: %w", err)
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.clearDeadlines() }()
	return nil
}

// clearAgain queues an upgraded socket for a second clearing of its
// handshake deadline. nbio's listener arms that deadline just after it
// hands the socket to an event loop, so on a busy node the loop can
// upgrade (and clear) first and the listener re-arm it after, which would
// drop a healthy connection HandshakeTimeout later. One goroutine clears
// every socket again one to two ticks after its upgrade: no timer per
// connection.
func (s *Server) clearAgain(nb *nbio.Conn) {
	s.clearMu.Lock()
	s.clearNext = append(s.clearNext, nb)
	s.clearMu.Unlock()
}

func (s *Server) clearDeadlines() {
	// Two ticks must pass well within the handshake timeout.
	t := time.NewTicker(min(time.Second, s.cfg.HandshakeTimeout/4))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.clearMu.Lock()
		due := s.clearLater
		s.clearLater, s.clearNext = s.clearNext, nil
		s.clearMu.Unlock()
		for _, nb := range due {
			_ = nb.SetReadDeadline(time.Time{})
		}
	}
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting, closes every socket and stops the event loops.
// Callers close their WebSocket connections politely before this.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	err := s.engine.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.engine.Stop()
	}
	s.handlers.stop()
	return err
}

// AfterFunc runs f on nbio's timer goroutine after d; f must not block.
func (s *Server) AfterFunc(d time.Duration, f func()) *time.Timer {
	return s.engine.AfterFunc(d, f)
}
