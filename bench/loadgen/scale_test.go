package loadgen

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestScale holds many connections in this one process against nodes that
// run elsewhere (each node process has its own open-file limit), e.g.
//
//	bin/relay serve -addr 127.0.0.1:9001 &
//	LOADGEN_SCALE_ADDRS=127.0.0.1:9001 LOADGEN_SCALE_CONNS=15000 \
//	  go test -run TestScale -v -timeout 10m ./bench/loadgen
//
// It is skipped unless LOADGEN_SCALE_ADDRS is set.
func TestScale(t *testing.T) {
	addrs := strings.Split(os.Getenv("LOADGEN_SCALE_ADDRS"), ",")
	if addrs[0] == "" {
		t.Skip("set LOADGEN_SCALE_ADDRS to nodes' addresses to run")
	}
	n := envInt(t, "LOADGEN_SCALE_CONNS", 15000)
	members := envInt(t, "LOADGEN_SCALE_MEMBERS", 50)
	senders := envInt(t, "LOADGEN_SCALE_SENDERS", n/members)
	conns := layout(addrs[0], n, members)
	for i := range conns { // spread each event's members over the nodes
		conns[i].Addr = addrs[(i/(n/members))%len(addrs)]
	}
	src := []string{"127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"}
	before := memory(t)
	h := startWorker(t, Config{Conns: conns, SourceAddrs: src, DialRate: 5000, StatusEveryMS: 1000})
	start := time.Now()
	h.send(Command{Cmd: "dial"})
	d := h.wait("dialed", 5*time.Minute).Status
	t.Logf("dialed %d in %v, failures %v", d.Dialed, time.Since(start).Round(time.Millisecond), d.DialFailed)
	s := h.waitStatus("every connection up", time.Minute, func(s *Status) bool { return s.Up == n })
	time.Sleep(2 * time.Second)
	runtime.GC()
	after := memory(t)
	t.Logf("up %d; RSS %d MB (+%d), heap in use %d MB (+%d), %.0f bytes heap per conn, goroutines %d",
		s.Up, after.rss>>20, (after.rss-before.rss)>>20, after.heap>>20, (after.heap-before.heap)>>20,
		float64(after.heap-before.heap)/float64(n), runtime.NumGoroutine())

	h.send(Command{Cmd: "phase", Phase: "scale", Senders: senders, CursorHz: 10, ActionHz: 2})
	time.Sleep(5 * time.Second)
	h.send(Command{Cmd: "end_phase", DrainMS: 1000})
	pr := h.wait("phase", time.Minute)
	p := pr.Phase
	t.Logf("after the phase: up %d dropped %v extra %v", pr.Status.Up, pr.Status.Dropped, pr.Status.Extra)
	t.Logf("phase: cursors sent %d received %d; actions sent %d expected %d received %d dup %d gaps %d; frames %d; missed %d; cpu %.1fs",
		p.CursorsSent, p.CursorsReceived, p.ActionsSent, p.ActionsExpected, p.ActionsReceived, p.ActionDuplicates, p.ActionGaps,
		p.FramesIn, p.MissedSlots, p.CPUSeconds)
	for _, x := range []struct {
		name string
		s    *hdrhistogram.Snapshot
	}{{"cursor same-node", p.CursorSame}, {"cursor cross-node", p.CursorCross}, {"action same-node", p.ActionSame},
		{"action cross-node", p.ActionCross}, {"receive lag", p.ReceiveLag}} {
		h := hist(t, x.name, x.s)
		t.Logf("%-17s n=%-7d p50 %6dµs p99 %6dµs max %6dµs", x.name, h.TotalCount(), h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max())
	}

	start = time.Now()
	h.send(Command{Cmd: "close", Rate: 10000})
	cl := h.wait("closed", 5*time.Minute).Status
	t.Logf("closed in %v: up %d open %d dropped %v", time.Since(start).Round(time.Millisecond), cl.Up, cl.Extra["open"], cl.Dropped)
	h.send(Command{Cmd: "exit"})
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

func envInt(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	return def
}

type mem struct{ rss, heap uint64 }

func memory(t *testing.T) mem {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := mem{heap: ms.HeapInuse}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			m.rss = kb << 10
		}
	}
	return m
}
