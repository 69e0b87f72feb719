package loadgen

import (
	"maps"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 60 s, 3 significant digits.
const (
	histMin    = 1
	histMax    = 60_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// record adds v (microseconds) to h, clamped to the histogram's range so
// that a wild value (a clock step, a foreign client's cursor) counts at an
// edge instead of being lost.
func record(h *hdrhistogram.Histogram, v int64) {
	_ = h.RecordValue(min(max(v, 0), histMax))
}

// phaseStats is what one shard measured in one phase.
type phaseStats struct {
	cursorSame, cursorCross *hdrhistogram.Histogram
	actionSame, actionCross *hdrhistogram.Histogram
	lag                     *hdrhistogram.Histogram

	cursorsReceived uint64
	actionsReceived uint64
	duplicates      uint64
	gaps            uint64
	framesIn        uint64
	bytesIn         uint64
}

func newPhaseStats() *phaseStats {
	return &phaseStats{
		cursorSame: newHist(), cursorCross: newHist(),
		actionSame: newHist(), actionCross: newHist(),
		lag: newHist(),
	}
}

func (p *phaseStats) hists() [5]*hdrhistogram.Histogram {
	return [5]*hdrhistogram.Histogram{p.cursorSame, p.cursorCross, p.actionSame, p.actionCross, p.lag}
}

func (p *phaseStats) reset() {
	for _, h := range p.hists() {
		h.Reset()
	}
	p.cursorsReceived, p.actionsReceived, p.duplicates, p.gaps, p.framesIn, p.bytesIn = 0, 0, 0, 0, 0, 0
}

// add merges o into p.
func (p *phaseStats) add(o *phaseStats) {
	mine, theirs := p.hists(), o.hists()
	for i := range mine {
		mine[i].Merge(theirs[i])
	}
	p.cursorsReceived += o.cursorsReceived
	p.actionsReceived += o.actionsReceived
	p.duplicates += o.duplicates
	p.gaps += o.gaps
	p.framesIn += o.framesIn
	p.bytesIn += o.bytesIn
}

// fill copies p into the report r.
func (p *phaseStats) fill(r *Phase) {
	r.CursorSame = p.cursorSame.Export()
	r.CursorCross = p.cursorCross.Export()
	r.ActionSame = p.actionSame.Export()
	r.ActionCross = p.actionCross.Export()
	r.ReceiveLag = p.lag.Export()
	r.CursorsReceived = p.cursorsReceived
	r.ActionsReceived = p.actionsReceived
	r.ActionDuplicates = p.duplicates
	r.ActionGaps = p.gaps
	r.FramesIn = p.framesIn
	r.BytesIn = p.bytesIn
}

// causes counts events by cause (dial failures, drops). Safe for concurrent
// use.
type causes struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *causes) add(cause string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]int)
	}
	c.m[cause]++
	c.mu.Unlock()
}

// snapshot returns a copy; never nil, so reports show {} rather than null.
func (c *causes) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		return map[string]int{}
	}
	return maps.Clone(c.m)
}

// cpuSeconds is this process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// tally is the worker's running totals that several goroutines update.
type tally struct {
	up     atomic.Int64 // welcomed and not yet gone
	open   atomic.Int64 // registered with the engine and not yet gone
	dialed atomic.Int64 // handshakes completed

	cursorsSent atomic.Uint64
	actionsSent atomic.Uint64
	missedSlots atomic.Uint64

	dialFailed causes
	dropped    causes
}
