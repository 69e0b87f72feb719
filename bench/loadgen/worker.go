package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
)

// Defaults for zero Config and Command fields.
const (
	defaultDialConcurrency = 64
	defaultStatusEvery     = time.Second
	defaultDrain           = 500 * time.Millisecond
	// closeGrace is how long "close" and exit wait for the server to answer
	// close frames before closing the remaining sockets themselves.
	closeGrace = 2 * time.Second
)

// Main runs one load worker: it reads a Config and then Commands from stdin
// and writes Reports to stdout until an "exit" command or the end of stdin,
// and closes every connection before it returns. stderr gets diagnostics.
// It returns an error only for a fatal problem, which it also reports.
func Main(stdin io.Reader, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// nbio logs through a package-level logger that prints to os.Stdout,
	// which here carries the reports: send it to stderr instead.
	logging.SetLogger(nbioLog{log})
	out := &reporter{enc: json.NewEncoder(stdout)}
	dec := json.NewDecoder(stdin)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		err = fmt.Errorf("loadgen: read config: %w", err)
		out.write(Report{Type: "error", Error: err.Error()})
		return err
	}
	out.worker = cfg.Worker
	w, err := newWorker(cfg, out, log)
	if err != nil {
		out.write(Report{Type: "error", Error: err.Error()})
		return err
	}
	return w.run(dec)
}

// worker is one load worker process's state.
//
// Goroutines, each started by run and stopped before it returns: the
// command reader, the nbio event loops (and nbio's timer, which runs
// OnClose), the sender scheduler, the status reporter, and during "dial" a
// pool of DialConcurrency dialers. Lock order: a shard's lock, then nbio's
// per-connection lock (taken inside Write and Close); no code holds two
// shard locks.
type worker struct {
	cfg    Config
	out    *reporter
	log    *slog.Logger
	local  []*net.TCPAddr
	engine *nbio.Engine
	shards []*shard
	sched  *scheduler
	t      tally

	// Owned by the command loop (and the dialers, each for its own index,
	// during "dial").
	conns      []*conn // by Config.Conns index; nil until dialed
	senders    []int   // indices of conns that may send, by rank
	phaseTag   uint32  // "phase" commands so far
	inPhase    bool    // a phase has started and not ended
	phaseName  string
	phaseStart time.Time
	phaseCPU   float64
}

func newWorker(cfg Config, out *reporter, log *slog.Logger) (*worker, error) {
	if cfg.DialConcurrency <= 0 {
		cfg.DialConcurrency = defaultDialConcurrency
	}
	w := &worker{cfg: cfg, out: out, log: log, conns: make([]*conn, len(cfg.Conns))}
	for _, a := range cfg.SourceAddrs {
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("loadgen: source address %q is not an IP address", a)
		}
		w.local = append(w.local, &net.TCPAddr{IP: ip})
	}
	for i, c := range cfg.Conns {
		if c.SenderRank >= 0 {
			w.senders = append(w.senders, i)
		}
	}
	slices.SortStableFunc(w.senders, func(a, b int) int {
		return cmp.Compare(cfg.Conns[a].SenderRank, cfg.Conns[b].SenderRank)
	})
	loops := runtime.GOMAXPROCS(0)
	w.engine = nbio.NewEngine(nbio.Config{Name: fmt.Sprintf("loadgen-%d", cfg.Worker), NPoller: loops})
	for range loops {
		w.shards = append(w.shards, newShard(&w.t))
	}
	w.engine.OnData(w.onData)
	w.engine.OnClose(w.onClose)
	w.sched = newScheduler(&w.t)
	return w, nil
}

// shardOf is the shard of nb's event loop: nbio assigns a connection to
// loop fd % loops.
func (w *worker) shardOf(nb *nbio.Conn) *shard { return w.shards[nb.Hash()%len(w.shards)] }

// onData runs on an event loop with bytes read from nb.
func (w *worker) onData(nb *nbio.Conn, data []byte) {
	sh := w.shardOf(nb)
	sh.mu.Lock()
	if c, ok := nb.Session().(*conn); ok {
		sh.receive(c, data, time.Now().UnixNano())
	}
	sh.mu.Unlock()
}

// onClose runs on nbio's timer goroutine once nb is closed.
func (w *worker) onClose(nb *nbio.Conn, err error) {
	sh := w.shardOf(nb)
	sh.mu.Lock()
	if c, ok := nb.Session().(*conn); ok {
		sh.gone(c, err)
	}
	sh.mu.Unlock()
}

// run is the command loop. Shutdown, in order, once the command reader has
// seen "exit" or the end of stdin: cancel whatever command is running, stop
// the scheduler and the status reporter and wait for them and the reader,
// close every connection (close frames, a grace period, then the sockets),
// stop the event loops.
func (w *worker) run(dec *json.Decoder) error {
	if err := w.engine.Start(); err != nil {
		err = fmt.Errorf("loadgen: start event loops: %w", err)
		w.out.write(Report{Type: "error", Error: err.Error()})
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	cmds := make(chan Command, 16)
	wg.Add(3)
	go func() { defer wg.Done(); w.readCommands(dec, cmds, cancel) }()
	go func() { defer wg.Done(); w.sched.run(done) }()
	go func() { defer wg.Done(); w.reportStatus(done) }()

	for cmd := range cmds {
		w.handle(ctx, cmd)
	}

	cancel()
	close(done)
	wg.Wait()
	w.closeAll(context.Background(), 0)
	w.engine.Stop()
	return nil
}

// readCommands decodes commands until "exit" or the end of stdin, then
// cancels the running command and closes cmds.
func (w *worker) readCommands(dec *json.Decoder, cmds chan<- Command, cancel context.CancelFunc) {
	defer close(cmds)
	defer cancel()
	for {
		var cmd Command
		if err := dec.Decode(&cmd); err != nil {
			if !errors.Is(err, io.EOF) {
				w.out.write(Report{Type: "error", Error: fmt.Sprintf("loadgen: read command: %v", err)})
			}
			return
		}
		if cmd.Cmd == "exit" {
			return
		}
		cmds <- cmd
	}
}

// handle runs one command to its end (dial, close and end_phase take time,
// and stop early if the worker exits).
func (w *worker) handle(ctx context.Context, cmd Command) {
	switch cmd.Cmd {
	case "dial":
		start := time.Now()
		w.dialAll(ctx)
		s := w.status()
		w.log.Info("dialed", "conns", len(w.cfg.Conns), "handshakes", s.Dialed, "failed", s.DialFailed,
			"took", time.Since(start).Round(time.Millisecond))
		w.out.write(Report{Type: "dialed", Status: s})
	case "phase":
		w.startPhase(cmd)
		w.log.Info("phase started", "phase", cmd.Phase, "senders", cmd.Senders, "cursor_hz", cmd.CursorHz, "action_hz", cmd.ActionHz)
	case "end_phase":
		p := w.endPhase(ctx, cmd)
		w.log.Info("phase ended", "phase", p.Name, "actions_sent", p.ActionsSent, "actions_received", p.ActionsReceived,
			"gaps", p.ActionGaps, "duplicates", p.ActionDuplicates, "missed_slots", p.MissedSlots)
		w.out.write(Report{Type: "phase", Phase: p, Status: w.status()})
	case "close":
		start := time.Now()
		w.closeAll(ctx, cmd.Rate)
		s := w.status()
		w.log.Info("closed", "took", time.Since(start).Round(time.Millisecond), "dropped", s.Dropped)
		w.out.write(Report{Type: "closed", Status: s})
	default:
		w.out.write(Report{Type: "error", Error: fmt.Sprintf("loadgen: unknown command %q", cmd.Cmd)})
	}
}

// startPhase resets the phase statistics and starts the senders. A phase
// started while another runs replaces it.
func (w *worker) startPhase(cmd Command) {
	w.stopSenders()
	w.phaseTag++
	w.inPhase = true
	w.phaseName, w.phaseStart, w.phaseCPU = cmd.Phase, time.Now(), cpuSeconds()
	for _, sh := range w.shards {
		sh.mu.Lock()
		sh.begin(w.phaseTag)
		sh.mu.Unlock()
	}
	p := plan{tag: w.phaseTag, cursorEvery: period(cmd.CursorHz), actionEvery: period(cmd.ActionHz)}
	for _, i := range w.senders {
		if w.cfg.Conns[i].SenderRank >= cmd.Senders {
			break
		}
		if c := w.conns[i]; c != nil {
			p.senders = append(p.senders, c)
		}
	}
	w.sched.start <- p
}

// period converts a rate to nanoseconds between sends; 0 for none.
func period(hz float64) int64 {
	if hz <= 0 {
		return 0
	}
	return max(1, int64(1e9/hz))
}

// stopSenders stops the scheduler's phase and returns what it sent.
func (w *worker) stopSenders() sendCounts {
	reply := make(chan sendCounts)
	w.sched.stop <- reply
	return <-reply
}

// endPhase stops the senders, lets what is in flight arrive (DrainMS,
// default 500 ms), then closes the phase on every shard and merges it.
// DurationMS is the sending time, without the drain; CPUSeconds includes
// the drain. Without a phase running it reports an empty one at once.
func (w *worker) endPhase(ctx context.Context, cmd Command) *Phase {
	sent := w.stopSenders()
	if !w.inPhase {
		r := &Phase{Name: cmd.Phase}
		newPhaseStats().fill(r)
		return r
	}
	w.inPhase = false
	r := &Phase{
		Name:            w.phaseName,
		DurationMS:      time.Since(w.phaseStart).Milliseconds(),
		CursorsSent:     sent.cursors,
		ActionsSent:     sent.actions,
		ActionsExpected: sent.expected,
		MissedSlots:     sent.missed,
	}
	drain := defaultDrain
	if cmd.DrainMS > 0 {
		drain = time.Duration(cmd.DrainMS) * time.Millisecond
	}
	sleep(ctx, drain)
	total := newPhaseStats()
	for _, sh := range w.shards {
		sh.mu.Lock()
		sh.open = false
		if sh.tag == w.phaseTag {
			total.add(sh.ph)
		}
		sh.mu.Unlock()
	}
	total.fill(r)
	r.CPUSeconds = cpuSeconds() - w.phaseCPU
	return r
}

// closeAll closes every connection: a close frame (1000) at most rate per
// second (no limit if rate <= 0), then, once all are sent, up to closeGrace
// for the server's answers (each answer closes its socket), then closes what
// is left.
func (w *worker) closeAll(ctx context.Context, rate float64) {
	var live []*conn
	for _, c := range w.conns {
		if c != nil && c.state.Load() != stGone {
			live = append(live, c)
		}
	}
	pace(ctx, len(live), rate, func(i int) bool {
		c := live[i]
		if c.state.CompareAndSwap(stUp, stClosing) || c.state.CompareAndSwap(stNew, stClosing) {
			var buf [clientHeadroom + 125]byte
			_, _ = c.sock.Write(closeFrame(&buf, 1000))
		}
		return true
	})
	deadline := time.Now().Add(closeGrace)
	for w.t.open.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range live {
		if c.state.Load() != stGone {
			c.state.CompareAndSwap(stUp, stClosing)
			c.state.CompareAndSwap(stNew, stClosing)
			_ = c.sock.Close()
		}
	}
	deadline = time.Now().Add(closeGrace)
	for w.t.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // OnClose runs on nbio's timer goroutine
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
