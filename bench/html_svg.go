package bench

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Inline SVG charts for the HTML report. lineChart and barChart return
// finished <svg> elements; every text they write goes through
// template.HTMLEscapeString, so the output is well-formed XML too.

// chartSpec is what both kinds of chart take: size, title and axis labels.
type chartSpec struct {
	Title, XLabel, YLabel string
	W, H                  int // pixels; zero means 600 by 260
}

// chartLine is one line of a lineChart. Points whose X or Y is not finite
// are left out, and so are Xs beyond the end of Y or the other way round.
type chartLine struct {
	Name   string
	Color  string // CSS colour; "" takes the next in chartPalette
	Dashed bool
	X, Y   []float64
}

func (s *chartLine) add(x, y float64) {
	s.X = append(s.X, x)
	s.Y = append(s.Y, y)
}

// chartPalette is colour-blind safe (Okabe and Ito).
var chartPalette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"}

// maxMarkers: lines with at most this many points get a dot at each, so a
// single point still shows.
const maxMarkers = 30

// lineChart draws series against shared axes: y from zero (or below, if a
// value is negative), x over the data, both on rounded ticks.
func lineChart(c chartSpec, ss ...chartLine) template.HTML {
	var xs, ys []float64
	for i := range ss {
		if ss[i].Color == "" {
			ss[i].Color = chartPalette[i%len(chartPalette)]
		}
		for j := range min(len(ss[i].X), len(ss[i].Y)) {
			if finiteFloat(ss[i].X[j]) && finiteFloat(ss[i].Y[j]) {
				xs = append(xs, ss[i].X[j])
				ys = append(ys, ss[i].Y[j])
			}
		}
	}
	f := newFrame(c, ss)
	if len(xs) == 0 {
		return f.noData()
	}
	xa := niceAxis(floatsMin(xs), floatsMax(xs), 6)
	ya := niceAxis(math.Min(0, floatsMin(ys)), floatsMax(ys), 5)
	f.axes(xa, ya)
	for _, s := range ss {
		var pts []string
		var dots strings.Builder
		for j := range min(len(s.X), len(s.Y)) {
			if !finiteFloat(s.X[j]) || !finiteFloat(s.Y[j]) {
				continue
			}
			px, py := f.px(xa, s.X[j]), f.py(ya, s.Y[j])
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
			fmt.Fprintf(&dots, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s</title></circle>`,
				px, py, svgEsc(s.Color), svgEsc(fmt.Sprintf("%s: %s at %s", s.Name, fmtTick(s.Y[j]), fmtTick(s.X[j]))))
		}
		if len(pts) > 1 {
			dash := ""
			if s.Dashed {
				dash = ` stroke-dasharray="6 3"`
			}
			fmt.Fprintf(f.b, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`,
				svgEsc(s.Color), dash, strings.Join(pts, " "))
		}
		if len(pts) <= maxMarkers {
			f.b.WriteString(dots.String())
		}
	}
	return f.close()
}

// barChart draws one bar per value, in order, labelled below with
// labels (thinned out when they would crowd).
func barChart(c chartSpec, labels []string, values []float64) template.HTML {
	f := newFrame(c, nil)
	if len(values) == 0 {
		return f.noData()
	}
	var top float64
	for _, v := range values {
		if finiteFloat(v) {
			top = math.Max(top, v)
		}
	}
	ya := niceAxis(0, top, 4)
	f.axes(chartAxis{}, ya)
	slot := (f.right - f.left) / float64(len(values))
	every := int(math.Ceil(float64(len(values)) * 44 / (f.right - f.left))) // a label per 44 px
	for i, v := range values {
		label := ""
		if i < len(labels) {
			label = labels[i]
		}
		x := f.left + float64(i)*slot
		if finiteFloat(v) && v > 0 {
			y := f.py(ya, v)
			fmt.Fprintf(f.b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
				x+slot*0.08, y, math.Max(slot*0.84, 0.5), f.bottom-y, svgEsc(label+": "+fmtNum(v)))
		}
		if i%every == 0 && label != "" {
			f.text(x+slot/2, f.bottom+14, "middle", "tick", label)
		}
	}
	return f.close()
}

// chartFrame is a chart being written: the SVG so far and its plot area.
type chartFrame struct {
	c                        chartSpec
	b                        *strings.Builder
	left, top, right, bottom float64
}

// newFrame opens the <svg>, writes the title and a legend for ss (none
// for a single unnamed line) and lays out the plot area below them.
func newFrame(c chartSpec, ss []chartLine) *chartFrame {
	if c.W == 0 {
		c.W, c.H = 600, 260
	}
	f := &chartFrame{c: c, b: &strings.Builder{}, left: 58, right: float64(c.W) - 14, top: 26, bottom: float64(c.H) - 36}
	fmt.Fprintf(f.b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		c.W, c.H, c.W, c.H, svgEsc(c.Title))
	f.text(float64(c.W)/2, 16, "middle", "title", c.Title)
	if len(ss) > 1 {
		x, y := f.left, f.top+4
		for _, s := range ss {
			w := 24 + 6.2*float64(len([]rune(s.Name))) + 14
			if x+w > f.right && x > f.left {
				x, y = f.left, y+15
			}
			dash := ""
			if s.Dashed {
				dash = ` stroke-dasharray="6 3"`
			}
			fmt.Fprintf(f.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`,
				x, y-4, x+18, y-4, svgEsc(s.Color), dash)
			f.text(x+22, y, "start", "legend", s.Name)
			x += w
		}
		f.top = y + 10
	}
	if c.XLabel != "" {
		f.text((f.left+f.right)/2, float64(c.H)-6, "middle", "label", c.XLabel)
	}
	if c.YLabel != "" {
		cy := (f.top + f.bottom) / 2
		fmt.Fprintf(f.b, `<text class="label" text-anchor="middle" transform="translate(13 %.1f) rotate(-90)">%s</text>`,
			cy, svgEsc(c.YLabel))
	}
	return f
}

// axes draws the grid, the tick labels and the axis lines. A zero x axis
// (no ticks) leaves the x ticks to the caller.
func (f *chartFrame) axes(xa, ya chartAxis) {
	for _, t := range ya.ticks {
		y := f.py(ya, t)
		fmt.Fprintf(f.b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, f.left, y, f.right, y)
		f.text(f.left-5, y+4, "end", "tick", fmtTick(t))
	}
	for _, t := range xa.ticks {
		x := f.px(xa, t)
		fmt.Fprintf(f.b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, f.top, x, f.bottom)
		f.text(x, f.bottom+14, "middle", "tick", fmtTick(t))
	}
	fmt.Fprintf(f.b, `<path class="axis" d="M%.1f %.1fV%.1fH%.1f"/>`, f.left, f.top, f.bottom, f.right)
}

func (f *chartFrame) noData() template.HTML {
	fmt.Fprintf(f.b, `<rect class="empty" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`,
		f.left, f.top, f.right-f.left, f.bottom-f.top)
	f.text((f.left+f.right)/2, (f.top+f.bottom)/2+4, "middle", "nodata", "no data")
	return f.close()
}

func (f *chartFrame) close() template.HTML {
	f.b.WriteString("</svg>")
	return template.HTML(f.b.String()) // #nosec: every text written above is escaped
}

func (f *chartFrame) text(x, y float64, anchor, class, s string) {
	fmt.Fprintf(f.b, `<text class="%s" x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, class, x, y, anchor, svgEsc(s))
}

func (f *chartFrame) px(a chartAxis, v float64) float64 {
	return f.left + (v-a.lo)/(a.hi-a.lo)*(f.right-f.left)
}

func (f *chartFrame) py(a chartAxis, v float64) float64 {
	return f.bottom - (v-a.lo)/(a.hi-a.lo)*(f.bottom-f.top)
}

// chartAxis is a value range widened to round ticks.
type chartAxis struct {
	lo, hi float64
	ticks  []float64
}

// niceAxis widens [lo, hi] to multiples of a step of 1, 2, 2.5 or 5 times
// a power of ten, giving about n ticks. An empty range is widened around
// its value so a single point sits in the middle.
func niceAxis(lo, hi float64, n int) chartAxis {
	if hi <= lo {
		pad := math.Abs(lo) / 2
		if pad == 0 {
			pad = 1
		}
		if lo >= 0 && lo-pad < 0 {
			lo, hi = 0, lo+pad
		} else {
			lo, hi = lo-pad, hi+pad
		}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if raw <= m*mag {
			step = m * mag
			break
		}
	}
	a := chartAxis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step}
	for k := math.Floor(lo / step); k*step <= a.hi+step/1e6; k++ {
		a.ticks = append(a.ticks, k*step)
	}
	return a
}

// fmtTick writes a tick value short: 1.5k, 2M, 0.25.
func fmtTick(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= u.div {
			return strconv.FormatFloat(v/u.div, 'g', 4, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func svgEsc(s string) string { return template.HTMLEscapeString(s) }

func finiteFloat(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func floatsMin(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
}

func floatsMax(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = math.Max(m, x)
	}
	return m
}
