package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relay-dev/relay/bench/loadgen"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat CPU times; it is 100
// on every Linux the relay supports.
const clockTicks = 100

// node is a relay (or baseline) process started by the bench, or a running
// node it targets (cmd nil).
type node struct {
	id   string
	addr string
	cmd  *exec.Cmd
	log  *os.File
}

func (n *node) pid() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// freePort asks the kernel for a port that is free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startNode runs `relay serve` (or `relay baseline`) and waits until it
// answers /healthz or /v1/stats.
func startNode(ctx context.Context, bin, target, id string, args []string, logDir string) (*node, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &node{id: id, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	sub := "serve"
	if target == "baseline" {
		sub = "baseline"
	}
	all := append([]string{sub, "-addr", n.addr, "-node", id}, args...)
	n.cmd = exec.Command(bin, all...)
	n.cmd.Env = append(os.Environ(), "RELAY_JWT_SECRET=", "RELAY_JWT_SECRET_FILE=")
	if n.log, err = os.CreateTemp(logDir, id+"-*.log"); err != nil {
		return nil, err
	}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := fetchStats(ctx, n.addr); err == nil {
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.stop()
			return nil, fmt.Errorf("node %s did not answer on %s within 15s; its log: %s", id, n.addr, n.log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks the node to drain (SIGTERM) and kills it if it lingers.
func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	if n.log != nil {
		_ = n.log.Close()
	}
}

// nodeStats is the subset of a node's /v1/stats the bench reads.
type nodeStats struct {
	Conns      int64  `json:"conns"`
	Events     int64  `json:"events"`
	Goroutines int    `json:"goroutines"`
	FramesOut  uint64 `json:"frames_out"`
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	Broker     *struct {
		Published     uint64 `json:"published"`
		Delivered     uint64 `json:"delivered"`
		Ready         bool   `json:"ready"`
		Subscriptions int    `json:"subscriptions"`
	} `json:"broker"`
	// The baseline reports its broker counters flat.
	BrokerPublished uint64 `json:"broker_published"`
	BrokerDelivered uint64 `json:"broker_delivered"`
}

func (s nodeStats) published() uint64 {
	if s.Broker != nil {
		return s.Broker.Published
	}
	return s.BrokerPublished
}

func (s nodeStats) delivered() uint64 {
	if s.Broker != nil {
		return s.Broker.Delivered
	}
	return s.BrokerDelivered
}

var statsClient = &http.Client{Timeout: 5 * time.Second}

func fetchStats(ctx context.Context, addr string) (nodeStats, error) {
	var st nodeStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := statsClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// procRSS is a process's resident set in bytes.
func procRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// procCPU is a process's user plus system CPU time in seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields start after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// sockMem is the kernel's TCP socket memory (bytes) and sockets in use,
// from /proc/net/sockstat.
func sockMem() (bytes uint64, inuse int) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "TCP:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseUint(f[i+1], 10, 64)
			switch f[i] {
			case "mem":
				bytes = v * uint64(os.Getpagesize())
			case "inuse":
				inuse = int(v)
			}
		}
	}
	return bytes, inuse
}

// worker is a load-worker process and the latest it reported.
type worker struct {
	id    int
	conns int
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	status loadgen.Status
	events chan loadgen.Report // everything but status reports
	done   chan struct{}       // closed when its stdout ends
}

func startWorker(bin string, cfg loadgen.Config, logDir string) (*worker, error) {
	w := &worker{id: cfg.Worker, conns: len(cfg.Conns), events: make(chan loadgen.Report, 64), done: make(chan struct{})}
	w.cmd = exec.Command(bin, "bench-worker")
	stderr, err := os.CreateTemp(logDir, fmt.Sprintf("worker%d-*.log", cfg.Worker))
	if err != nil {
		return nil, err
	}
	w.cmd.Stderr = stderr
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", cfg.Worker, err)
	}
	go w.read(stdout)
	if err := json.NewEncoder(w.stdin).Encode(cfg); err != nil {
		return nil, fmt.Errorf("configure worker %d: %w", cfg.Worker, err)
	}
	return w, nil
}

// read consumes the worker's reports until its stdout closes.
func (w *worker) read(r io.Reader) {
	defer close(w.done)
	defer close(w.events)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rep loadgen.Report
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			continue
		}
		if rep.Type == "status" && rep.Status != nil {
			w.mu.Lock()
			w.status = *rep.Status
			w.mu.Unlock()
			continue
		}
		w.events <- rep
	}
}

func (w *worker) latest() loadgen.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

func (w *worker) send(cmd loadgen.Command) error {
	return json.NewEncoder(w.stdin).Encode(cmd)
}

// await waits for a report of the given type.
func (w *worker) await(ctx context.Context, typ string, timeout time.Duration) (loadgen.Report, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case rep, ok := <-w.events:
			if !ok {
				return rep, fmt.Errorf("worker %d exited while waiting for %q", w.id, typ)
			}
			if rep.Type == "error" {
				return rep, fmt.Errorf("worker %d: %s", w.id, rep.Error)
			}
			if rep.Type == typ {
				return rep, nil
			}
		case <-t.C:
			return loadgen.Report{}, fmt.Errorf("worker %d: no %q report within %v", w.id, typ, timeout)
		case <-ctx.Done():
			return loadgen.Report{}, ctx.Err()
		}
	}
}

func (w *worker) pid() int {
	if w.cmd.Process == nil {
		return 0
	}
	return w.cmd.Process.Pid
}

// stop tells the worker to exit and kills it if it does not.
func (w *worker) stop() {
	_ = w.send(loadgen.Command{Cmd: "exit"})
	_ = w.stdin.Close()
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		_ = w.cmd.Process.Kill()
	}
	err := w.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return
	}
}
