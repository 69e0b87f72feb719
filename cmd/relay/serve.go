package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relay-dev/relay/bridge"
	"github.com/relay-dev/relay/server"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("relay serve", flag.ExitOnError)
	var (
		cfg        server.Config
		amqpURL    = fs.String("amqp", "", "RabbitMQ URL; empty runs standalone")
		exchange   = fs.String("exchange", "relay.events", "RabbitMQ exchange shared by the nodes")
		expiration = fs.Duration("amqp-expiration", 5*time.Second, "lifetime of a batch in the broker")
		secretFile = fs.String("jwt-secret-file", "", "file holding the HS256 secret (or set RELAY_JWT_SECRET); none runs open mode")
		origins    = fs.String("allowed-origins", "", "comma-separated browser origins allowed to connect; empty allows any")
		grace      = fs.Duration("shutdown-grace", 10*time.Second, "how long shutdown waits for connections to close")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&cfg.Node, "node", "", "node ID; default: a unique generated ID")
	fs.DurationVar(&cfg.Tick, "tick", 50*time.Millisecond, "batch period per event")
	fs.IntVar(&cfg.MaxConns, "max-conns", 1_000_000, "WebSocket connection limit (HTTP 503 beyond it)")
	fs.IntVar(&cfg.MaxMessage, "max-message", 4096, "largest client message in bytes")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 100, "messages per second per connection")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 200, "message burst per connection")
	fs.IntVar(&cfg.MaxPending, "max-pending", 1<<20, "unsent output bytes per connection before it is closed as slow")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", 25*time.Second, "ping connections quiet this long")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 60*time.Second, "close connections that sent nothing this long")
	fs.IntVar(&cfg.Loops, "loops", 0, "event loops; 0 means one per CPU")
	err := envDefaults(fs, map[string]string{
		"addr": "RELAY_ADDR", "amqp": "RELAY_AMQP_URL", "node": "RELAY_NODE", "tick": "RELAY_TICK",
		"exchange": "RELAY_EXCHANGE", "amqp-expiration": "RELAY_AMQP_EXPIRATION",
		"max-conns": "RELAY_MAX_CONNS", "max-message": "RELAY_MAX_MESSAGE",
		"rate-limit": "RELAY_RATE_LIMIT", "rate-burst": "RELAY_RATE_BURST", "max-pending": "RELAY_MAX_PENDING",
		"ping-interval": "RELAY_PING_INTERVAL", "idle-timeout": "RELAY_IDLE_TIMEOUT",
		"allowed-origins": "RELAY_ALLOWED_ORIGINS", "jwt-secret-file": "RELAY_JWT_SECRET_FILE",
		"shutdown-grace": "RELAY_SHUTDOWN_GRACE", "log-level": "RELAY_LOG_LEVEL", "loops": "RELAY_LOOPS",
	})
	if err != nil {
		return err
	}
	_ = fs.Parse(args)

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	if cfg.Node == "" {
		cfg.Node = generatedNodeID()
	}
	if cfg.JWTSecret, err = readSecret(*secretFile); err != nil {
		return err
	}
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	logFileLimit(log)

	var br *bridge.AMQP
	if *amqpURL != "" {
		br, err = bridge.New(bridge.Config{URL: *amqpURL, Exchange: *exchange, Node: cfg.Node, Expiration: *expiration, Logger: log})
		if err != nil {
			return err
		}
		cfg.Bridge = br
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}

	err = untilSignal(*grace, func(ctx context.Context) error {
		log.Info("shutting down: closing connections with 1001", "grace", *grace)
		return srv.Shutdown(ctx)
	})
	if br != nil {
		_ = br.Close()
	}
	log.Info("stopped")
	return err
}

// untilSignal waits for SIGINT or SIGTERM, then runs shutdown with grace
// to finish.
func untilSignal(grace time.Duration, shutdown func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop() // a second signal kills at once
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return shutdown(sctx)
}

func generatedNodeID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := "node-" + hex.EncodeToString(b[:])
	if host != "" && server.ValidUserID(host) && len(host) < 40 {
		id = host + "-" + hex.EncodeToString(b[:])
	}
	return id
}

// logFileLimit reports the open-file limit, which caps connections. Go
// raises the soft limit to the hard one at start; only the hard limit (set
// by systemd's LimitNOFILE or limits.conf) can lift it further.
func logFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			lim = want
		}
	}
	log.Info("open-file limit", "soft", lim.Cur, "hard", lim.Max)
}
