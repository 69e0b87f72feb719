package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// writeReport writes out.json and out.html.
func writeReport(r *Report, out string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := ValidateReport(js); err != nil {
		return fmt.Errorf("bench: report does not match its schema (a bug): %w", err)
	}
	if err := os.WriteFile(out+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		return err
	}
	return os.WriteFile(out+".html", page.Bytes(), 0o644)
}

// compare puts the relay beside the baseline.
func compare(relay, base *Run) *Comparison {
	c := &Comparison{RelayMemPerConn: relay.Totals.RSSPerConnBytes, BaselineMemPerConn: base.Totals.RSSPerConnBytes}
	c.MemPerConnRatio = ratio(relay.Totals.RSSPerConnBytes, base.Totals.RSSPerConnBytes)
	if len(relay.Phases) > 0 && len(base.Phases) > 0 {
		rp, bp := relay.Phases[0], base.Phases[0]
		c.CPUPerFrameRatio = ratio(rp.RelayCPUSecPerFrame, bp.RelayCPUSecPerFrame)
		c.RelayCPURatio = ratio(rp.RelayCPUSeconds, bp.RelayCPUSeconds)
		c.P99Ratio = ratio(worstP99(&rp, "cursor")+worstP99(&rp, "action"), worstP99(&bp, "cursor")+worstP99(&bp, "action"))
		c.BrokerMsgsRatio = ratio(rp.BrokerPublishesPerSec, bp.BrokerPublishesPerSec)
	}
	return c
}

// causes prints a cause -> count map, sorted, or "none".
func causes(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// ratioText prints a ratio, or n/a when either side measured nothing.
func ratioText(r float64) string {
	if r == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", r)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// printSummary prints the figures a reader looks for first.
func printSummary(w io.Writer, r *Report, out string) {
	for _, run := range r.Runs {
		t := run.Totals
		fmt.Fprintf(w, "\n%s\n", run.Label)
		fmt.Fprintf(w, "  connections held %d of %d; failed %d (%s); dropped (%s)\n", t.ConnsHeld, t.ConnsTarget, t.ConnsFailed, causes(t.FailedByCause), causes(t.DroppedByCause))
		fmt.Fprintf(w, "  handshakes %.0f/s; memory per connection: RSS %.0f B, heap %.0f B; kernel per socket: buffers %.0f B, slab %.0f B; goroutines flat: %v\n",
			t.HandshakesPerSec, t.RSSPerConnBytes, t.HeapPerConnBytes, t.KernelBytesPerSocket, t.KernelSlabPerSocket, t.GoroutinesFlat)
		fmt.Fprintf(w, "  CPU seconds over the whole run: relay %.1f, load workers %.1f\n", t.RelayCPUSeconds, t.WorkerCPUSeconds)
		for _, n := range run.Nodes {
			fmt.Fprintf(w, "  node %s: peak %d conns, RSS %.1f MiB (idle %.1f), %.0f B/conn, goroutines %d (idle %d)\n",
				n.ID, n.PeakConns, float64(n.RSSBytes)/(1<<20), float64(n.IdleRSSBytes)/(1<<20), n.RSSPerConnBytes, n.Goroutines, n.IdleGoroutines)
		}
		for _, p := range run.Phases {
			fmt.Fprintf(w, "  phase %s (%d senders): actions %d/%d delivered, %d duplicates, %d gaps; %.0f frames/s, %.0f frames per relay CPU-s\n",
				p.Name, p.Senders, p.ActionsReceived, p.ActionsExpected, p.ActionDuplicates, p.ActionGaps, p.FramesPerSec, p.FramesPerRelayCPUSec)
			for _, k := range latencyKinds {
				l := p.Latency[k]
				if l.Count == 0 {
					continue
				}
				fmt.Fprintf(w, "    %-13s n=%-8d p50 %7.2f  p90 %7.2f  p99 %7.2f  p99.9 %7.2f  max %7.2f ms\n", k, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
			}
			if run.Broker != nil || p.BrokerPublishesPerSec > 0 {
				fmt.Fprintf(w, "    broker %.0f publishes/s (bound %.0f), %.0f deliveries/s; clients send %.0f/s\n",
					p.BrokerPublishesPerSec, p.BrokerPublishesBound, p.BrokerDeliveriesPerSec, p.ClientSendsPerSec)
			}
			fmt.Fprintf(w, "    in this phase: relay %.1f CPU-s, load workers %.1f CPU-s, %d missed send slots\n",
				p.RelayCPUSeconds, p.WorkerCPUSeconds, p.MissedSlots)
		}
		if run.Broker != nil {
			b := run.Broker
			fmt.Fprintf(w, "  broker holds %d queues, %d bindings, %d consumers, %d channels\n", b.Queues, b.Bindings, b.Consumers, b.Channels)
		}
	}
	if c := r.Comparison; c != nil {
		fmt.Fprintf(w, "\nrelay / baseline: memory per connection %s (target <= 0.1), relay CPU-s %s (target <= 0.5 in live), CPU per frame %s, p99 %s, broker messages %s\n",
			ratioText(c.MemPerConnRatio), ratioText(c.RelayCPURatio), ratioText(c.CPUPerFrameRatio), ratioText(c.P99Ratio), ratioText(c.BrokerMsgsRatio))
	}
	for _, wn := range r.Warnings {
		fmt.Fprintln(w, "warning:", wn)
	}
	fmt.Fprintf(w, "\nreport: %s.json, %s.html\n", out, out)
}
