package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/relay-dev/relay/bench/loadgen"
)

// fdHeadroom is what a process keeps free beyond its connections: epoll,
// listeners, logs, the broker connection, the stats requests.
const fdHeadroom = 400

// Labels name the targets honestly in reports.
var Labels = map[string]string{
	"relay":    "relay: nbio event loops, one batch per event per tick, encoded once",
	"baseline": "baseline: goroutine-per-connection gorilla/websocket, one message per update, no batching",
}

// Execute runs the bench described by cfg, writes cfg.Out+".json" and
// cfg.Out+".html", and returns the report. Progress goes to log.
func Execute(ctx context.Context, cfg Config, log io.Writer) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.RelayBin == "" {
		if cfg.RelayBin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	rep := &Report{Schema: SchemaID, Preset: cfg.Preset, Started: time.Now(), Flags: flagsOf(cfg), Warnings: []string{}}
	rep.Machine = describeMachine()
	rep.Machine.Tuning, rep.Warnings = checkTuning(cfg, rep.Warnings)
	for _, w := range rep.Warnings {
		fmt.Fprintln(log, "warning:", w)
	}

	perProc := int(rep.Machine.NoFileSoft) - fdHeadroom
	if perProc < 100 {
		return nil, fmt.Errorf("bench: the open-file limit (%d) leaves no room for connections; raise it (deploy/tune.sh, ulimit -n)", rep.Machine.NoFileSoft)
	}
	nodes := cfg.Nodes
	if nodes == 0 && len(cfg.Targets) == 0 {
		nodes = (cfg.Conns + perProc - 1) / perProc
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = (cfg.Conns + perProc - 1) / perProc
	}
	if len(cfg.Targets) == 0 && nodes > 1 {
		if cfg.AMQPURL == "" {
			return nil, fmt.Errorf("bench: %d connections need %d nodes here (open-file limit %d per process), and nodes share events through RabbitMQ: pass -amqp URL (or lower -conns)", cfg.Conns, nodes, rep.Machine.NoFileSoft)
		}
		if err := brokerAnswers(cfg.AMQPURL); err != nil {
			return nil, fmt.Errorf("bench: %d nodes need the broker at %s: %v (start it with `make broker`)", nodes, cfg.AMQPURL, err)
		}
	}
	if nodes == 1 {
		cfg.AMQPURL = "" // one node needs no broker
	}
	rep.Flags["amqp"] = redactURL(cfg.AMQPURL)
	rep.Flags["nodes"] = fmt.Sprint(nodes)
	rep.Flags["workers"] = fmt.Sprint(workers)
	fmt.Fprintf(log, "bench %s: %d connections, %d node(s), %d worker(s), open-file limit %d per process\n",
		cfg.Preset, cfg.Conns, max(nodes, len(cfg.Targets)), workers, rep.Machine.NoFileSoft)

	targets := []string{"relay"}
	if cfg.Compare == "baseline" {
		targets = append(targets, "baseline")
	}
	for _, target := range targets {
		r := &runner{cfg: cfg, target: target, nodeCount: nodes, workerCount: workers, log: log}
		run, err := r.run(ctx)
		if err != nil {
			return nil, fmt.Errorf("bench %s: %w", target, err)
		}
		rep.Runs = append(rep.Runs, *run)
	}
	if len(rep.Runs) == 2 {
		rep.Comparison = compare(&rep.Runs[0], &rep.Runs[1])
	}
	rep.Finished = time.Now()
	rep.DurationS = rep.Finished.Sub(rep.Started).Seconds()
	if err := writeReport(rep, cfg.Out); err != nil {
		return rep, err
	}
	printSummary(log, rep, cfg.Out)
	return rep, nil
}

func brokerAnswers(url string) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

func flagsOf(c Config) map[string]string {
	return map[string]string{
		"preset": c.Preset, "conns": fmt.Sprint(c.Conns), "event_size": fmt.Sprint(c.EventSize),
		"mixer_min": fmt.Sprint(c.MixerMin), "mixer_max": fmt.Sprint(c.MixerMax),
		"lounges": fmt.Sprint(c.Lounges), "lounge_size": fmt.Sprint(c.LoungeSize),
		"senders": fmt.Sprint(c.Senders), "cursor_hz": fmt.Sprint(c.CursorHz), "action_hz": fmt.Sprint(c.ActionHz),
		"tick": c.Tick.String(), "dial_rate": fmt.Sprint(c.DialRate), "hold": c.Hold.String(),
		"steps": fmt.Sprint(c.Steps), "step_limit": c.StepLimit.String(),
		"amqp": redactURL(c.AMQPURL), "compare": c.Compare, "targets": fmt.Sprint(c.Targets),
	}
}

func redactURL(u string) string {
	if uri, err := amqp.ParseURI(u); err == nil && uri.Password != "" {
		uri.Password = "xxx"
		return uri.String()
	}
	return u
}

// runner is one target's run.
type runner struct {
	cfg         Config
	target      string
	nodeCount   int
	workerCount int
	log         io.Writer

	nodes   []*node
	workers []*worker
	plan    plan
	logDir  string

	mu                           sync.Mutex // guards results below, written by the sampler
	result                       Run
	levels                       [][]Level
	nextLvl                      []int
	peak                         []int
	sockIdle                     uint64
	sockPeak                     uint64 // the most socket memory seen
	sockInuseIdle, sockInusePeak int
	idleHeap                     []uint64 // per node, before the ramp
	slabIdle, slabPeak           uint64
	start                        time.Time
}

func (r *runner) run(ctx context.Context) (_ *Run, err error) {
	r.result = Run{Target: r.target, Label: Labels[r.target], Phases: []PhaseResult{}, Series: []Sample{}}
	r.start = time.Now()
	if r.logDir, err = os.MkdirTemp("", "relay-bench-"); err != nil {
		return nil, err
	}
	defer r.teardown()
	if err := r.startNodes(ctx); err != nil {
		return nil, err
	}
	addrs := make([]string, len(r.nodes))
	for i, n := range r.nodes {
		addrs[i] = n.addr
	}
	r.plan = makePlan(r.cfg, addrs, r.workerCount)
	r.idleFigures(ctx)
	if err := r.startWorkers(); err != nil {
		return nil, err
	}
	sctx, stopSampler := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.sample(sctx) }()
	defer func() { stopSampler(); wg.Wait() }()

	if err := r.ramp(ctx); err != nil {
		return nil, err
	}
	if err := r.phases(ctx); err != nil {
		return nil, err
	}
	r.collectHeld()
	if err := r.rampDown(ctx); err != nil {
		return nil, err
	}
	stopSampler()
	wg.Wait()
	r.finish()
	res := r.result
	return &res, nil
}

func (r *runner) startNodes(ctx context.Context) error {
	if len(r.cfg.Targets) > 0 {
		for i, a := range r.cfg.Targets {
			st, err := fetchStats(ctx, a)
			if err != nil {
				return fmt.Errorf("target %s: %w", a, err)
			}
			_ = st
			r.nodes = append(r.nodes, &node{id: fmt.Sprintf("target-%d", i), addr: a})
		}
		return nil
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	exchange := "relay.bench." + hex.EncodeToString(b[:])
	perNode := (r.cfg.Conns+r.nodeCount-1)/r.nodeCount + 100
	for i := range r.nodeCount {
		args := []string{"-tick", r.cfg.Tick.String(), "-log-level", "warn", "-max-conns", fmt.Sprint(perNode)}
		if r.cfg.AMQPURL != "" {
			args = append(args, "-amqp", r.cfg.AMQPURL, "-exchange", exchange)
		}
		n, err := startNode(ctx, r.cfg.RelayBin, r.target, fmt.Sprintf("%s-n%d", r.target, i+1), args, r.logDir)
		if err != nil {
			return err
		}
		r.nodes = append(r.nodes, n)
	}
	return nil
}

// idleFigures records what the nodes cost before any connection.
func (r *runner) idleFigures(ctx context.Context) {
	time.Sleep(time.Second) // let start-up allocations settle
	r.result.Nodes = make([]NodeResult, len(r.nodes))
	r.levels = make([][]Level, len(r.nodes))
	r.nextLvl = make([]int, len(r.nodes))
	r.peak = make([]int, len(r.nodes))
	r.idleHeap = make([]uint64, len(r.nodes))
	for i, n := range r.nodes {
		nr := &r.result.Nodes[i]
		nr.ID, nr.Addr, nr.PID = n.id, n.addr, n.pid()
		nr.IdleRSSBytes = procRSS(n.pid())
		if st, err := fetchStats(ctx, n.addr); err == nil {
			nr.IdleGoroutines = st.Goroutines
			r.idleHeap[i] = st.HeapAlloc
		}
		nr.Levels = []Level{}
	}
	r.sockIdle, r.sockInuseIdle = sockMem()
	r.slabIdle = slabBytes()
}

func (r *runner) startWorkers() error {
	perWorkerRate := r.cfg.DialRate / float64(len(r.plan.workers))
	for i, conns := range r.plan.workers {
		cfg := loadgen.Config{Worker: i, Conns: conns, SourceAddrs: sourceAddrs(i),
			DialRate: perWorkerRate, DialConcurrency: 64, StatusEveryMS: 1000}
		w, err := startWorker(r.cfg.RelayBin, cfg, r.logDir)
		if err != nil {
			return err
		}
		r.workers = append(r.workers, w)
	}
	return nil
}

func (r *runner) teardown() {
	for _, w := range r.workers {
		w.stop()
	}
	for _, n := range r.nodes {
		n.stop()
	}
	if r.logDir == "" {
		return
	}
	// Keep the processes' logs when any of them warned: they are how a
	// broken run is explained.
	if warned := logsWithWarnings(r.logDir); len(warned) > 0 {
		fmt.Fprintf(r.log, "%s: logs with warnings kept in %s: %s\n", r.target, r.logDir, strings.Join(warned, ", "))
		return
	}
	_ = os.RemoveAll(r.logDir)
}

// logsWithWarnings names the logs in dir that hold a warning or an error.
func logsWithWarnings(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			// Bench nodes run in open mode on purpose; that warning says
			// nothing about the run.
			if (bytes.Contains(line, []byte("level=WARN")) || bytes.Contains(line, []byte("level=ERROR"))) &&
				!bytes.Contains(line, []byte("OPEN mode")) {
				out = append(out, e.Name())
				break
			}
		}
	}
	return out
}

// ramp dials every connection and waits until every worker has tried all
// of its own.
func (r *runner) ramp(ctx context.Context) error {
	for _, w := range r.workers {
		if err := w.send(loadgen.Command{Cmd: "dial"}); err != nil {
			return err
		}
	}
	prog := newProgress(r.log, r.cfg.Progress, r.cfg.Conns, r.target+": connections up")
	defer prog.done()
	timeout := time.Duration(float64(r.cfg.Conns)/r.cfg.DialRate*3)*time.Second + time.Minute
	start := time.Now()
	dialed := make(chan error, len(r.workers))
	for _, w := range r.workers {
		go func() { _, err := w.await(ctx, "dialed", timeout); dialed <- err }()
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for pending := len(r.workers); pending > 0; {
		select {
		case err := <-dialed:
			if err != nil {
				return err
			}
			pending--
		case <-tick.C:
			up, failed := r.upAndFailed()
			prog.set(up, failed)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	secs := time.Since(start).Seconds()
	// Status reports come every second: wait for one that counts the
	// last handshakes, and let the joins' batches settle meanwhile.
	time.Sleep(2 * time.Second)
	if err := r.waitBridges(ctx); err != nil {
		return err
	}
	up, failed := r.upAndFailed()
	prog.set(up, failed)
	r.result.Totals.RampSeconds = secs
	r.result.Totals.HandshakesPerSec = float64(up) / secs
	return nil
}

// waitBridges waits until every node's bridge has declared, bound and
// consumed the queue of each of its events: batches published before a
// node's queue is bound never reach it, and a phase measured then would
// count the topology's build-up as lost actions.
func (r *runner) waitBridges(ctx context.Context) error {
	if r.cfg.AMQPURL == "" {
		return nil
	}
	start := time.Now()
	deadline := start.Add(10 * time.Minute)
	for {
		ready := 0
		for _, n := range r.nodes {
			st, err := fetchStats(ctx, n.addr)
			if err == nil && (st.Broker == nil || st.Broker.Ready) {
				ready++
			}
		}
		if ready == len(r.nodes) {
			if d := time.Since(start); d > time.Second {
				fmt.Fprintf(r.log, "%s: broker topology ready after %.1fs more\n", r.target, d.Seconds())
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d nodes have their broker topology ready after 10 minutes", ready, len(r.nodes))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (r *runner) upAndFailed() (up, failed int) {
	for _, w := range r.workers {
		st := w.latest()
		up += st.Up
		for _, n := range st.DialFailed {
			failed += n
		}
	}
	return up, failed
}

// phases runs the measured phases of the preset.
func (r *runner) phases(ctx context.Context) error {
	if len(r.cfg.Steps) > 0 { // saturate, or -steps with any preset

		for i, senders := range r.cfg.Steps {
			pr, err := r.phase(ctx, fmt.Sprintf("step-%d", i+1), senders)
			if err != nil {
				return err
			}
			fmt.Fprintf(r.log, "%s: %d senders: p99 cursor %.1f ms, action %.1f ms, %.0f frames/s\n",
				r.target, senders, worstP99(pr, "cursor"), worstP99(pr, "action"), pr.FramesPerSec)
			if worstP99(pr, "") > float64(r.cfg.StepLimit.Milliseconds()) {
				fmt.Fprintf(r.log, "%s: p99 passed %v at %d senders; the last step under it is the capacity figure\n", r.target, r.cfg.StepLimit, senders)
				break
			}
		}
		return nil
	}
	name := "steady"
	if r.cfg.Senders == 0 {
		name = "hold"
	}
	_, err := r.phase(ctx, name, r.cfg.Senders)
	return err
}

// worstP99 is the highest p99 among the latency kinds with prefix.
func worstP99(pr *PhaseResult, prefix string) float64 {
	worst := 0.0
	for k, p := range pr.Latency {
		if k == "receive_lag" || len(k) < len(prefix) || k[:len(prefix)] != prefix {
			continue
		}
		worst = max(worst, p.P99)
	}
	return worst
}

// nodeSnap is the nodes' counters at one moment.
type nodeSnap struct {
	at        time.Time
	cpu       float64
	frames    uint64
	published uint64
	delivered uint64
	workerCPU float64
}

func (r *runner) snap(ctx context.Context) nodeSnap {
	s := nodeSnap{at: time.Now()}
	for _, n := range r.nodes {
		s.cpu += procCPU(n.pid())
		if st, err := fetchStats(ctx, n.addr); err == nil {
			s.frames += st.FramesOut
			s.published += st.published()
			s.delivered += st.delivered()
		}
	}
	for _, w := range r.workers {
		s.workerCPU += procCPU(w.pid())
	}
	return s
}

func (r *runner) phase(ctx context.Context, name string, senders int) (*PhaseResult, error) {
	cmd := loadgen.Command{Cmd: "phase", Phase: name, Senders: senders, CursorHz: r.cfg.CursorHz, ActionHz: r.cfg.ActionHz}
	before := r.snap(ctx)
	for _, w := range r.workers {
		if err := w.send(cmd); err != nil {
			return nil, err
		}
	}
	var broker *BrokerResult
	var brokerDone chan struct{}
	if r.cfg.AMQPURL != "" && r.result.Broker == nil {
		brokerDone = make(chan struct{})
		go func() { defer close(brokerDone); broker = brokerTopology() }()
	}
	fmt.Fprintf(r.log, "%s: phase %s: %d senders for %v\n", r.target, name, senders, r.cfg.Hold)
	select {
	case <-time.After(r.cfg.Hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after := r.snap(ctx)
	for _, w := range r.workers {
		if err := w.send(loadgen.Command{Cmd: "end_phase", DrainMS: 1000}); err != nil {
			return nil, err
		}
	}
	var parts []*loadgen.Phase
	for _, w := range r.workers {
		rep, err := w.await(ctx, "phase", time.Minute)
		if err != nil {
			return nil, err
		}
		if rep.Phase != nil {
			parts = append(parts, rep.Phase)
		}
	}
	pr := mergePhases(name, parts)
	pr.Senders, pr.CursorHz, pr.ActionHz = senders, r.cfg.CursorHz, r.cfg.ActionHz
	secs := after.at.Sub(before.at).Seconds()
	pr.FramesDelivered = after.frames - before.frames
	pr.FramesPerSec = float64(pr.FramesDelivered) / secs
	pr.RelayCPUSeconds = after.cpu - before.cpu
	pr.WorkerCPUSeconds = after.workerCPU - before.workerCPU
	if pr.RelayCPUSeconds > 0 {
		pr.FramesPerRelayCPUSec = float64(pr.FramesDelivered) / pr.RelayCPUSeconds
	}
	if pr.FramesDelivered > 0 {
		pr.RelayCPUSecPerFrame = pr.RelayCPUSeconds / float64(pr.FramesDelivered)
	}
	pr.BrokerPublishesPerSec = float64(after.published-before.published) / secs
	pr.BrokerDeliveriesPerSec = float64(after.delivered-before.delivered) / secs
	senderEvents := min(senders, len(r.plan.events))
	pr.BrokerPublishesBound = float64(senderEvents*min(senders/max(senderEvents, 1), len(r.nodes))) / r.cfg.Tick.Seconds()
	pr.ClientSendsPerSec = float64(senders) * (r.cfg.CursorHz + r.cfg.ActionHz)
	if brokerDone != nil {
		<-brokerDone
		if broker != nil {
			broker.PublishesPerSec = pr.BrokerPublishesPerSec
			broker.DeliveriesPerSec = pr.BrokerDeliveriesPerSec
			r.result.Broker = broker
		}
	}
	r.result.Phases = append(r.result.Phases, *pr)
	return pr, nil
}

// collectHeld counts the connections still up after the phases.
func (r *runner) collectHeld() {
	t := &r.result.Totals
	t.ConnsTarget = r.cfg.Conns
	t.FailedByCause, t.DroppedByCause = map[string]int{}, map[string]int{}
	for _, w := range r.workers {
		st := w.latest()
		t.ConnsHeld += st.Up
		for k, v := range st.DialFailed {
			t.FailedByCause[k] += v
			t.ConnsFailed += v
		}
		for k, v := range st.Dropped {
			t.DroppedByCause[k] += v
		}
		r.result.Workers = append(r.result.Workers, WorkerResult{ID: w.id, PID: w.pid(), Conns: w.conns, Up: st.Up,
			CPUSeconds: procCPU(w.pid()), MissedSlots: st.MissedSlots, DialFailed: nonNil(st.DialFailed), Dropped: nonNil(st.Dropped)})
	}
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func (r *runner) rampDown(ctx context.Context) error {
	for _, w := range r.workers {
		if err := w.send(loadgen.Command{Cmd: "close", Rate: r.cfg.DialRate / float64(len(r.workers))}); err != nil {
			return err
		}
	}
	timeout := time.Duration(float64(r.cfg.Conns)/r.cfg.DialRate*3)*time.Second + time.Minute
	for _, w := range r.workers {
		if _, err := w.await(ctx, "closed", timeout); err != nil {
			return err
		}
	}
	return nil
}

// finish derives the totals from what the sampler saw.
func (r *runner) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &r.result.Totals
	var conns int
	var rssGrowth, heap float64
	flat := true
	for i := range r.result.Nodes {
		nr := &r.result.Nodes[i]
		nr.Levels = append(nr.Levels, r.levels[i]...)
		if nr.PeakConns > 0 {
			growth := float64(nr.RSSBytes) - float64(nr.IdleRSSBytes)
			nr.RSSPerConnBytes = growth / float64(nr.PeakConns)
			// Growth over the idle node, like RSS, so the two compare.
			heapGrowth := max(float64(nr.HeapBytes)-float64(r.idleHeap[i]), 0)
			nr.HeapPerConnBytes = heapGrowth / float64(nr.PeakConns)
			conns += nr.PeakConns
			rssGrowth += growth
			heap += heapGrowth
		}
		nr.CPUSeconds = procCPU(nr.PID)
		t.RelayCPUSeconds += nr.CPUSeconds
		// Goroutines may grow with events (the bridge holds two per
		// subscribed event) but not with connections.
		allowance := 64 + 2*int(r.eventsOnNode(i))
		if nr.Goroutines-nr.IdleGoroutines > allowance {
			flat = false
		}
	}
	if conns > 0 {
		t.RSSPerConnBytes = rssGrowth / float64(conns)
		t.HeapPerConnBytes = heap / float64(conns)
	}
	for _, w := range r.result.Workers {
		t.WorkerCPUSeconds += w.CPUSeconds
	}
	t.GoroutinesFlat = flat
	t.KernelSockMemIdleBytes, t.KernelSockMemPeakBytes = r.sockIdle, r.sockPeak
	t.KernelSlabIdleBytes, t.KernelSlabPeakBytes = r.slabIdle, r.slabPeak
	if d := r.sockInusePeak - r.sockInuseIdle; d > 0 {
		if r.sockPeak > r.sockIdle {
			t.KernelBytesPerSocket = float64(r.sockPeak-r.sockIdle) / float64(d)
		}
		if r.slabPeak > r.slabIdle {
			t.KernelSlabPerSocket = float64(r.slabPeak-r.slabIdle) / float64(d)
		}
	}
}

// eventsOnNode counts the events with members on node i: member m of
// event e is on node (e+m) mod nodes.
func (r *runner) eventsOnNode(i int) int {
	n, nodes := 0, len(r.nodes)
	for e, size := range r.plan.events {
		if size >= nodes || ((i-e)%nodes+nodes)%nodes < size {
			n++
		}
	}
	return n
}

// sample records the time series and per-node peaks every second.
func (r *runner) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastFrames uint64
	var lastRelayCPU, lastWorkerCPU float64
	lastAt := time.Now()
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := Sample{T: now.Sub(r.start).Seconds()}
			var frames uint64
			var relayCPU, workerCPU float64
			r.mu.Lock()
			for i, n := range r.nodes {
				st, err := fetchStats(ctx, n.addr)
				if err != nil {
					continue
				}
				rss := procRSS(n.pid())
				relayCPU += procCPU(n.pid())
				frames += st.FramesOut
				s.Conns += int(st.Conns)
				s.RSSBytes += rss
				s.HeapBytes += st.HeapAlloc
				s.Goroutines += st.Goroutines
				nr := &r.result.Nodes[i]
				nr.FramesOut = st.FramesOut
				if int(st.Conns) >= nr.PeakConns && st.Conns > 0 {
					nr.PeakConns, nr.RSSBytes, nr.HeapBytes, nr.Goroutines = int(st.Conns), rss, st.HeapAlloc, st.Goroutines
				}
				r.recordLevel(i, int(st.Conns), rss, st.HeapAlloc, st.Goroutines)
			}
			for _, w := range r.workers {
				workerCPU += procCPU(w.pid())
			}
			s.SockMemBytes, _ = sockMem()
			mem, inuse := sockMem()
			r.sockPeak = max(r.sockPeak, mem)
			if inuse > r.sockInusePeak {
				r.sockInusePeak = inuse
				r.slabPeak = slabBytes()
			}
			secs := now.Sub(lastAt).Seconds()
			if !first && secs > 0 {
				s.FramesPerSec = float64(frames-lastFrames) / secs
				s.RelayCPU = (relayCPU - lastRelayCPU) / secs
				s.WorkerCPU = (workerCPU - lastWorkerCPU) / secs
			}
			first = false
			lastFrames, lastRelayCPU, lastWorkerCPU, lastAt = frames, relayCPU, workerCPU, now
			r.result.Series = append(r.result.Series, s)
			r.mu.Unlock()
		}
	}
}

// recordLevel keeps a node's figures each time its connections pass the
// next tenth of its share. Called with r.mu held.
func (r *runner) recordLevel(i, conns int, rss, heap uint64, goroutines int) {
	share := (r.cfg.Conns + len(r.nodes) - 1) / len(r.nodes)
	step := max(share/10, 1)
	if conns < r.nextLvl[i] || conns == 0 {
		return
	}
	r.levels[i] = append(r.levels[i], Level{Conns: conns, RSSBytes: rss, HeapBytes: heap, Goroutines: goroutines})
	r.nextLvl[i] = (conns/step + 1) * step
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m.NoFileSoft, m.NoFileHard = lim.Cur, lim.Max
	}
	var uts syscall.Utsname
	if syscall.Uname(&uts) == nil {
		m.Kernel = charsToString(uts.Release[:])
	}
	m.CPUModel = cpuModel()
	m.MemTotalBytes = memTotal()
	m.Tuning = []TuneCheck{}
	return m
}

func charsToString(ca []int8) string {
	b := make([]byte, 0, len(ca))
	for _, c := range ca {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
