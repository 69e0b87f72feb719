package server

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/relay-dev/relay/bridge"
)

// Config is a node's configuration. Zero values take the defaults of
// PROTOCOL.md, named on each field.
type Config struct {
	// Addr is the listen address. Default "127.0.0.1:8080"; port 0 picks one.
	Addr string
	// Node is this node's ID, stamped on every batch. Required.
	Node string
	// Tick is the batch period per event. Default 50ms.
	Tick time.Duration
	// MaxConns is the WebSocket connection limit (HTTP 503 beyond it).
	// Default 1,000,000.
	MaxConns int
	// MaxMessage is the largest client message in bytes (close 1009
	// beyond it). Default 4096.
	MaxMessage int
	// RateLimit is messages per second per connection, RateBurst the burst
	// (close 1008 beyond them). Defaults 100 and 200.
	RateLimit float64
	RateBurst int
	// MaxPending is the unsent output a connection may hold before it is
	// closed as a slow consumer (1013). Default 1 MiB.
	MaxPending int
	// PingInterval: connections quiet this long get a ping. Default 25s.
	PingInterval time.Duration
	// IdleTimeout: connections that sent nothing, pongs included, this long
	// are closed with 1001. Default 60s.
	IdleTimeout time.Duration
	// AllowedOrigins limits browser origins; empty allows any.
	AllowedOrigins []string
	// JWTSecret turns on token mode (HS256); nil or empty runs open mode.
	JWTSecret []byte
	// Bridge links this node to others; nil runs standalone.
	Bridge bridge.Bridge
	// Workers is the number of tick workers. Default GOMAXPROCS.
	Workers int
	// Loops is the number of event loops. Default: the number of CPUs.
	Loops int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Tick <= 0 {
		c.Tick = 50 * time.Millisecond
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1_000_000
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 4096
	}
	if c.RateLimit <= 0 {
		c.RateLimit = 100
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 200
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 20
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
