package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relay-dev/relay/bench"
	"github.com/relay-dev/relay/bench/baseline"
	"github.com/relay-dev/relay/bench/loadgen"
	"golang.org/x/term"
)

func benchCmd(args []string) error {
	fs := flag.NewFlagSet("relay bench", flag.ExitOnError)
	var cfg bench.Config
	var targets, steps string
	fs.StringVar(&cfg.Preset, "preset", "default", "workload: "+bench.PresetNames())
	fs.IntVar(&cfg.Conns, "conns", 0, "total connections (0: the preset's)")
	fs.IntVar(&cfg.Nodes, "nodes", 0, "relay nodes to start (0: as many as the open-file limit needs)")
	fs.StringVar(&targets, "targets", "", "comma-separated addresses of running nodes to load instead of starting any")
	fs.IntVar(&cfg.Workers, "workers", 0, "load-worker processes (0: as many as the open-file limit needs)")
	fs.IntVar(&cfg.EventSize, "event-size", 0, "members per event (0: the preset's)")
	fs.IntVar(&cfg.MixerMin, "mixer-min", 0, "smallest mixer, when events vary in size")
	fs.IntVar(&cfg.MixerMax, "mixer-max", 0, "largest mixer, when events vary in size")
	fs.IntVar(&cfg.Lounges, "lounges", 0, "number of large events (lounges) laid out before the mixers")
	fs.IntVar(&cfg.LoungeSize, "lounge-size", 0, "members per lounge (with -lounges)")
	fs.IntVar(&cfg.Senders, "senders", 0, "members that send, one per event (0: the preset's; -1: none)")
	fs.Float64Var(&cfg.CursorHz, "cursor-hz", 0, "cursor moves per second per sender (0: the preset's)")
	fs.Float64Var(&cfg.ActionHz, "action-hz", 0, "actions per second per sender (0: the preset's)")
	fs.DurationVar(&cfg.Tick, "tick", 0, "the nodes' batch period (0: the preset's)")
	fs.Float64Var(&cfg.DialRate, "dial-rate", 0, "connections opened (and closed) per second (0: the preset's)")
	fs.DurationVar(&cfg.Hold, "hold", 0, "length of each measured phase (0: the preset's)")
	fs.StringVar(&steps, "steps", "", "saturate: comma-separated sender counts per step")
	fs.DurationVar(&cfg.StepLimit, "step-limit", 0, "saturate: stop after the first step whose p99 passes this")
	fs.StringVar(&cfg.AMQPURL, "amqp", "amqp://guest:guest@127.0.0.1:5672/", "broker for multi-node runs")
	fs.StringVar(&cfg.Compare, "compare", "", `"baseline": run the same load against the goroutine-per-connection baseline too`)
	fs.StringVar(&cfg.Out, "out", "bench-report", "report path without extension (.json and .html are written)")
	fs.StringVar(&cfg.TuneScript, "tune-script", "", "deploy/tune.sh to check the kernel with (default: found next to the binary)")
	if err := envDefaults(fs, map[string]string{"amqp": "RELAY_AMQP_URL"}); err != nil {
		return err
	}
	_ = fs.Parse(args)
	if targets != "" {
		cfg.Targets = strings.Split(targets, ",")
	}
	for _, s := range strings.Split(steps, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			return fmt.Errorf("-steps: %q is not a positive count", s)
		}
		cfg.Steps = append(cfg.Steps, n)
	}
	cfg.Progress = term.IsTerminal(int(os.Stderr.Fd()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := bench.Execute(ctx, cfg, os.Stderr)
	return err
}

// benchWorker is a load worker, started by relay bench; it speaks JSON
// lines on its standard input and output.
func benchWorker() error {
	return loadgen.Main(os.Stdin, os.Stdout, os.Stderr)
}

// baselineCmd runs the goroutine-per-connection baseline node that
// relay bench -compare baseline measures against.
func baselineCmd(args []string) error {
	fs := flag.NewFlagSet("relay baseline", flag.ExitOnError)
	var cfg baseline.Config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&cfg.Node, "node", "baseline", "node ID")
	fs.StringVar(&cfg.AMQPURL, "amqp", "", "RabbitMQ URL; empty runs standalone")
	fs.StringVar(&cfg.Exchange, "exchange", "relay.events", "RabbitMQ exchange")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	// Flags the bench passes to every node that the baseline ignores.
	fs.String("tick", "", "ignored: the baseline does not batch")
	fs.Int("max-conns", 0, "ignored: the baseline has no connection limit")
	_ = fs.Parse(args)
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := baseline.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	return untilSignal(10*time.Second, srv.Shutdown)
}
