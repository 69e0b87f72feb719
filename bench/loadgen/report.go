package loadgen

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// reporter writes Reports, one JSON object per line. Safe for concurrent
// use.
type reporter struct {
	mu     sync.Mutex
	enc    *json.Encoder
	worker int
}

func (r *reporter) write(rep Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Worker = r.worker
	_ = r.enc.Encode(rep) // if the orchestrator is gone, so is our purpose
}

// reportStatus writes a status report every StatusEveryMS until done is
// closed.
func (w *worker) reportStatus(done <-chan struct{}) {
	every := time.Duration(w.cfg.StatusEveryMS) * time.Millisecond
	if every <= 0 {
		every = defaultStatusEvery
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
			w.out.write(Report{Type: "status", Status: w.status()})
		}
	}
}

// status gathers the running totals.
func (w *worker) status() *Status {
	s := &Status{
		UnixMS:      time.Now().UnixMilli(),
		Up:          int(w.t.up.Load()),
		Dialed:      int(w.t.dialed.Load()),
		DialFailed:  w.t.dialFailed.snapshot(),
		Dropped:     w.t.dropped.snapshot(),
		CursorsSent: w.t.cursorsSent.Load(),
		ActionsSent: w.t.actionsSent.Load(),
		MissedSlots: w.t.missedSlots.Load(),
		CPUSeconds:  cpuSeconds(),
	}
	var bad, odd, foreign uint64
	for _, sh := range w.shards {
		sh.mu.Lock()
		s.FramesIn += sh.framesIn
		bad += sh.badFrames
		odd += sh.unexpected
		foreign += sh.foreignActions
		sh.mu.Unlock()
	}
	s.Extra = map[string]int64{
		"open":              w.t.open.Load(),
		"bad_frames":        int64(bad),
		"unexpected_frames": int64(odd),
		"foreign_actions":   int64(foreign),
	}
	return s
}

// nbioLog sends nbio's warnings and errors to the worker's log and drops its
// chatter (a line per start and stop).
type nbioLog struct{ l *slog.Logger }

func (nbioLog) Debug(string, ...any) {}
func (nbioLog) Info(string, ...any)  {}
func (a nbioLog) Warn(format string, v ...any) {
	a.l.Warn(fmt.Sprintf(format, v...), "component", "nbio")
}
func (a nbioLog) Error(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nbio")
}
