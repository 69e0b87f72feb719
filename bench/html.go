package bench

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The HTML report is one page with nothing to fetch: CSS in a <style>
// element and charts as inline SVG drawn here, so it opens from a file://
// URL with no network. html.tmpl lays the page out; this file turns a
// Report into what the template shows.

//go:embed html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":    fmtNum,
	"bytes":  fmtBytes,
	"ms":     fmtMS,
	"micros": fmtMicros,
	"pct":    fmtPct,
	"ratio":  fmtRatio,
	"causes": fmtCauses,
	"yesno": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
}).Parse(htmlSource))

// Targets the comparison table marks as met or missed: relay / baseline
// at or below these.
const (
	targetMemPerConnRatio  = 0.1
	targetCPUPerFrameRatio = 0.5
)

// htmlKindOrder is the order latency rows and histograms appear in; kinds
// a report has beyond these follow in name order.
var htmlKindOrder = []string{"cursor_same", "cursor_cross", "action_same", "action_cross", "receive_lag"}

// WriteHTML writes r as a self-contained HTML page: machine and flags,
// warnings, per run its totals, nodes, workers and phases with latency
// histograms, memory against connections and throughput and CPU over
// time, and the relay/baseline comparison when r has one.
func WriteHTML(w io.Writer, r *Report) error {
	if r == nil {
		return errors.New("bench: WriteHTML of a nil report")
	}
	return htmlTemplate.Execute(w, newHTMLPage(r))
}

// htmlPage is what html.tmpl shows: the report and what is worked out
// from it.
type htmlPage struct {
	*Report
	Date       string      // of Started, or "undated"
	Shortfalls []TuneCheck // tuning checks that failed
	Runs       []htmlRun
	Compare    []compareRow
}

type htmlRun struct {
	*Run
	CPUs   int  // machine CPUs, for "cores busy of N"
	Short  bool // fewer connections held than targeted
	Phases []htmlPhase
	// Charts: memory and goroutines against connections from the nodes'
	// levels; frames/s, connections, CPU and memory over time from Series.
	MemChart, GoroutineChart   template.HTML
	FramesChart, ConnsChart    template.HTML
	CPUChart, MemOverTimeChart template.HTML
}

type htmlPhase struct {
	*PhaseResult
	Latency       []latencyRow
	Histograms    []template.HTML
	RelayCores    float64 // relay CPU-seconds over the phase's duration
	WorkerCores   float64
	BoundShare    float64 // broker publishes as a share of the bound
	ReceiveLagP99 string  // "" when the phase has no receive_lag
}

type latencyRow struct {
	Kind string
	Percentiles
}

type compareRow struct {
	Measure string
	Ratio   float64
	Target  string // "" when the measure has no target
	Result  string // "met", "missed", "no data" or ""
	Note    string
}

func newHTMLPage(r *Report) htmlPage {
	p := htmlPage{Report: r, Date: "undated"}
	if !r.Started.IsZero() {
		p.Date = r.Started.Format("2006-01-02 15:04 MST")
	}
	for _, c := range r.Machine.Tuning {
		if !c.OK {
			p.Shortfalls = append(p.Shortfalls, c)
		}
	}
	for i := range r.Runs {
		p.Runs = append(p.Runs, newHTMLRun(&r.Runs[i], r.Machine.CPUs))
	}
	if c := r.Comparison; c != nil {
		p.Compare = []compareRow{
			targetRow("memory per connection (RSS)", c.MemPerConnRatio, targetMemPerConnRatio,
				fmt.Sprintf("relay %s, baseline %s", fmtBytes(c.RelayMemPerConn), fmtBytes(c.BaselineMemPerConn))),
			targetRow("relay CPU per frame", c.CPUPerFrameRatio, targetCPUPerFrameRatio, ""),
			{Measure: "relay CPU-seconds, first phase", Ratio: c.RelayCPURatio},
			{Measure: "latency p99 (worst cursor + worst action)", Ratio: c.P99Ratio},
			{Measure: "broker messages", Ratio: c.BrokerMsgsRatio},
		}
	}
	return p
}

// targetRow is a comparison row with a target; a zero ratio is one that
// could not be worked out.
func targetRow(measure string, ratio, target float64, note string) compareRow {
	row := compareRow{Measure: measure, Ratio: ratio, Target: "≤ " + fmtRatio(target), Note: note, Result: "missed"}
	switch {
	case ratio == 0 || math.IsNaN(ratio):
		row.Result = "no data"
	case ratio <= target:
		row.Result = "met"
	}
	return row
}

func newHTMLRun(run *Run, cpus int) htmlRun {
	h := htmlRun{Run: run, CPUs: cpus, Short: run.Totals.ConnsHeld < run.Totals.ConnsTarget}
	for i := range run.Phases {
		h.Phases = append(h.Phases, newHTMLPhase(&run.Phases[i]))
	}

	var peak uint64
	for _, n := range run.Nodes {
		for _, l := range n.Levels {
			peak = max(peak, l.RSSBytes, l.HeapBytes)
		}
	}
	div, unit := memUnit(peak)
	var mem, gor []chartLine
	for i, n := range run.Nodes {
		color := chartPalette[i%len(chartPalette)]
		rss, heap, g := chartLine{Name: n.ID + " RSS", Color: color}, chartLine{Name: n.ID + " heap", Color: color, Dashed: true}, chartLine{Name: n.ID, Color: color}
		for _, l := range n.Levels {
			x := float64(l.Conns)
			rss.add(x, float64(l.RSSBytes)/div)
			heap.add(x, float64(l.HeapBytes)/div)
			g.add(x, float64(l.Goroutines))
		}
		mem = append(mem, rss, heap)
		gor = append(gor, g)
	}
	h.MemChart = lineChart(chartSpec{Title: "Memory against connections, per node", XLabel: "connections on the node", YLabel: unit}, mem...)
	h.GoroutineChart = lineChart(chartSpec{Title: "Goroutines against connections, per node", XLabel: "connections on the node", YLabel: "goroutines"}, gor...)

	peak = 0
	for _, s := range run.Series {
		peak = max(peak, s.RSSBytes, s.HeapBytes, s.SockMemBytes)
	}
	div, unit = memUnit(peak)
	fps := chartLine{Name: "frames/s"}
	conns := chartLine{Name: "connections"}
	relayCPU := chartLine{Name: "relay (all nodes)"}
	workerCPU := chartLine{Name: "workers (all)"}
	rss := chartLine{Name: "RSS"}
	heap := chartLine{Name: "heap"}
	sock := chartLine{Name: "kernel socket memory"}
	for _, s := range run.Series {
		fps.add(s.T, s.FramesPerSec)
		conns.add(s.T, float64(s.Conns))
		relayCPU.add(s.T, s.RelayCPU)
		workerCPU.add(s.T, s.WorkerCPU)
		rss.add(s.T, float64(s.RSSBytes)/div)
		heap.add(s.T, float64(s.HeapBytes)/div)
		sock.add(s.T, float64(s.SockMemBytes)/div)
	}
	const overTime = "seconds since start"
	h.FramesChart = lineChart(chartSpec{Title: "Frames delivered per second", XLabel: overTime, YLabel: "frames/s"}, fps)
	h.ConnsChart = lineChart(chartSpec{Title: "Connections up", XLabel: overTime, YLabel: "connections"}, conns)
	h.CPUChart = lineChart(chartSpec{Title: "CPU: relay against load workers", XLabel: overTime, YLabel: "cores busy"}, relayCPU, workerCPU)
	h.MemOverTimeChart = lineChart(chartSpec{Title: "Memory over time, all nodes", XLabel: overTime, YLabel: unit}, rss, heap, sock)
	return h
}

func newHTMLPhase(p *PhaseResult) htmlPhase {
	h := htmlPhase{PhaseResult: p}
	if p.DurationS > 0 {
		h.RelayCores = p.RelayCPUSeconds / p.DurationS
		h.WorkerCores = p.WorkerCPUSeconds / p.DurationS
	}
	if p.BrokerPublishesBound > 0 {
		h.BoundShare = p.BrokerPublishesPerSec / p.BrokerPublishesBound
	}
	if lag, ok := p.Latency["receive_lag"]; ok {
		h.ReceiveLagP99 = fmtMS(lag.P99)
	}
	// Kinds with no samples (cross-node on one node, actions in an idle
	// hold) are left out rather than shown as zeros that look measured.
	for _, k := range orderedKinds(p.Latency) {
		if p.Latency[k].Count > 0 {
			h.Latency = append(h.Latency, latencyRow{Kind: k, Percentiles: p.Latency[k]})
		}
	}
	for _, k := range orderedKinds(p.Histograms) {
		if pc, ok := p.Latency[k]; ok && pc.Count == 0 {
			continue
		}
		title := k
		if pc, ok := p.Latency[k]; ok {
			title = fmt.Sprintf("%s: p50 %s, p99 %s ms", k, fmtMS(pc.P50), fmtMS(pc.P99))
		}
		var labels []string
		var counts []float64
		for _, b := range p.Histograms[k] {
			labels = append(labels, fmtMS(b.UpToMS))
			counts = append(counts, float64(b.Count))
		}
		h.Histograms = append(h.Histograms, barChart(chartSpec{
			Title: title, XLabel: "latency up to, ms", YLabel: "count", W: 290, H: 200,
		}, labels, counts))
	}
	return h
}

// orderedKinds is m's keys, htmlKindOrder first.
func orderedKinds[V any](m map[string]V) []string {
	var out []string
	for _, k := range htmlKindOrder {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(htmlKindOrder, k) {
			out = append(out, k)
		}
	}
	return out
}

// memUnit is the divisor and name of the unit a memory chart whose
// largest value is peak bytes is drawn in: MiB, or GiB from 1 GiB up.
func memUnit(peak uint64) (float64, string) {
	if peak >= 1<<30 {
		return 1 << 30, "GiB"
	}
	return 1 << 20, "MiB"
}

// Number formatting for the tables. Each takes any number type, since the
// template passes fields of several.

func numberOf(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case uint64:
		return float64(n)
	case float64:
		return n
	}
	return math.NaN()
}

// fmtNum writes v with thousands separators, and three significant digits
// below 100: 100,000; 2,000,000; 12.3; 0.456.
func fmtNum(v any) string {
	f := numberOf(v)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "–"
	case math.Abs(f) >= 100 || f == math.Trunc(f):
		return groupThousands(strconv.FormatFloat(math.Round(f), 'f', 0, 64))
	case math.Abs(f) >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	case math.Abs(f) >= 1:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}

func groupThousands(digits string) string {
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// fmtBytes writes a size in IEC units: 812 B, 3.32 KiB, 1.5 GiB.
func fmtBytes(v any) string {
	f := numberOf(v)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmtNum(math.Round(f)) + " B"
	}
	return fmtNum(f) + " " + units[i]
}

// fmtMS writes milliseconds to three significant digits.
func fmtMS(v any) string {
	f := numberOf(v)
	if f >= 100 {
		return fmtNum(math.Round(f))
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}

// fmtMicros writes seconds as microseconds: 1.1e-06 is "1.10 µs".
func fmtMicros(v any) string { return fmtNum(numberOf(v)*1e6) + " µs" }

func fmtPct(v any) string { return fmtNum(numberOf(v)*100) + "%" }

func fmtRatio(v any) string { return strconv.FormatFloat(numberOf(v), 'g', 3, 64) }

// fmtCauses writes counts by cause, largest first: "timeout 212, reset 7".
func fmtCauses(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		if m[k] != 0 {
			parts = append(parts, k+" "+fmtNum(m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
