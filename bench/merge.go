package bench

import (
	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/relay-dev/relay/bench/loadgen"
)

// latencyKinds are the histograms every worker reports per phase.
var latencyKinds = []string{"cursor_same", "cursor_cross", "action_same", "action_cross", "receive_lag"}

// bucketBounds are the histogram bars of the report, in ms.
var bucketBounds = []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 60000}

// mergePhases adds up the workers' reports of one phase.
func mergePhases(name string, parts []*loadgen.Phase) *PhaseResult {
	pr := &PhaseResult{Name: name, Latency: map[string]Percentiles{}, Histograms: map[string][]Bucket{}}
	hists := map[string]*hdrhistogram.Histogram{}
	for _, k := range latencyKinds {
		hists[k] = hdrhistogram.New(1, 60_000_000, 3)
	}
	for _, p := range parts {
		pr.DurationS = max(pr.DurationS, float64(p.DurationMS)/1000)
		for k, snap := range map[string]*hdrhistogram.Snapshot{
			"cursor_same": p.CursorSame, "cursor_cross": p.CursorCross,
			"action_same": p.ActionSame, "action_cross": p.ActionCross, "receive_lag": p.ReceiveLag,
		} {
			if snap != nil {
				hists[k].Merge(hdrhistogram.Import(snap))
			}
		}
		pr.ActionsSent += p.ActionsSent
		pr.ActionsExpected += p.ActionsExpected
		pr.ActionsReceived += p.ActionsReceived
		pr.ActionDuplicates += p.ActionDuplicates
		pr.ActionGaps += p.ActionGaps
		pr.CursorsSent += p.CursorsSent
		pr.CursorsReceived += p.CursorsReceived
		pr.MissedSlots += p.MissedSlots
	}
	for k, h := range hists {
		pr.Latency[k] = percentiles(h)
		pr.Histograms[k] = buckets(h)
	}
	return pr
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Percentiles{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

func buckets(h *hdrhistogram.Histogram) []Bucket {
	out := make([]Bucket, len(bucketBounds))
	for i, b := range bucketBounds {
		out[i].UpToMS = b
	}
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := float64(bar.To) / 1000
		i := 0
		for i < len(bucketBounds)-1 && v > bucketBounds[i] {
			i++
		}
		out[i].Count += bar.Count
	}
	return out
}
