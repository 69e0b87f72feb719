package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows connections coming up: a bar on a terminal, a line every
// five seconds elsewhere (CI logs).
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	total int
	label string
	last  time.Time
	start time.Time
}

func newProgress(w io.Writer, bar bool, total int, label string) *progress {
	p := &progress{w: w, total: total, label: label, start: time.Now(), last: time.Now()}
	if bar {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("conns"),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
	}
	return p
}

func (p *progress) set(up, failed int) {
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("%s (failed %d)", p.label, failed))
		_ = p.bar.Set(up)
		return
	}
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		rate := float64(up) / time.Since(p.start).Seconds()
		fmt.Fprintf(p.w, "%s: %d/%d (%.0f/s), failed %d\n", p.label, up, p.total, rate, failed)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
