package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWriteHTMLSample(t *testing.T) {
	page := renderHTML(t, sampleReport())
	svgs := checkSVGs(t, page)
	// Per run: 5 histograms in each of 2 phases, 2 charts against
	// connections, 4 over time.
	if want := 2 * (2*5 + 2 + 4); svgs != want {
		t.Errorf("%d <svg> charts, want %d", svgs, want)
	}
	for _, s := range []string{
		"c100k-2node", "2025-12-03 14:00 UTC", // title
		"relay-a", "relay-b", "base-a", "base-b", // nodes
		"p99", "p99.9", "cursor_cross", "receive_lag", "saturate-2x",
		"goroutines", "Goroutines against connections", "frames/s", "cores busy",
		"net.core.somaxconn", "timeout 212, reset 7", "AMD EPYC 7B13",
		`<td class="good">met</td>`, `<td class="bad">missed</td>`, // memory 0.083 met, CPU 0.55 missed
		"&lt;during&gt;", // warnings are escaped
	} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if strings.Contains(page, "<during>") {
		t.Error("warning text reached the page unescaped")
	}
	checkSelfContained(t, page)
	checkBalanced(t, page)
}

func TestWriteHTMLMinimal(t *testing.T) {
	page := renderHTML(t, minimalReport())
	if n := checkSVGs(t, page); n != 6 {
		t.Errorf("%d <svg> charts, want 6 (each saying no data)", n)
	}
	for _, s := range []string{"smoke", "undated", "no data", "No phases recorded", "relay-a"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if strings.Contains(page, `id="comparison"`) {
		t.Error("comparison shown for a report without one")
	}
	checkSelfContained(t, page)
	checkBalanced(t, page)
}

func TestWriteHTMLNil(t *testing.T) {
	if err := WriteHTML(io.Discard, nil); err == nil {
		t.Error("WriteHTML(nil) returned no error")
	}
}

// TestWriteHTMLScreenshot renders the sample page to a file and, where
// chromium is installed, has it take a screenshot, as a reader opening the
// file would. It never installs anything.
func TestWriteHTMLScreenshot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(renderHTML(t, sampleReport())), 0o644); err != nil {
		t.Fatal(err)
	}
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil || testing.Short() {
		t.Skip("no chromium, or -short: page written but not screenshot")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	png := filepath.Join(dir, "report.png")
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+png,
		"--window-size=1280,2400", "file://"+file).CombinedOutput()
	if err != nil {
		t.Skipf("chromium could not run here: %v\n%s", err, out)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot missing or blank (%v): chromium said\n%s", err, out)
	}
}

func TestHTMLLineChartEdgeCases(t *testing.T) {
	one := chartLine{Name: "one"}
	one.add(5, 42)
	manyPoints := chartLine{Name: "many"}
	for i := range 100 {
		manyPoints.add(float64(i), float64(i*i))
	}
	gappy := chartLine{Name: "gappy", X: []float64{0, 1, 2, 3}, Y: []float64{1, math.NaN(), math.Inf(1), 4}}
	tests := []struct {
		name  string
		lines []chartLine
		want  []string
		not   []string
	}{
		{"no lines", nil, []string{"no data"}, []string{"<polyline"}},
		{"empty line", []chartLine{{Name: "empty"}}, []string{"no data"}, []string{"<polyline"}},
		{"single point", []chartLine{one}, []string{"<circle", "one: 42 at 5"}, []string{"<polyline", "no data"}},
		{"non-finite points left out", []chartLine{gappy}, []string{"<polyline", "gappy: 4 at 3"}, []string{"NaN", "Inf"}},
		{"escaped names", []chartLine{{Name: `a<b & "c"`, X: []float64{0, 1}, Y: []float64{0, 1}}, one},
			[]string{"a&lt;b &amp; &#34;c&#34;"}, []string{`a<b`}},
		{"x and y of different lengths", []chartLine{{Name: "short", X: []float64{0, 1, 2}, Y: []float64{5}}}, []string{"short: 5 at 0"}, []string{"<polyline"}},
		{"many points, no dots", []chartLine{manyPoints}, []string{"<polyline"}, []string{"<circle"}},
		{"all zero", []chartLine{{Name: "z", X: []float64{0, 1, 2}, Y: []float64{0, 0, 0}}}, []string{"<polyline"}, []string{"NaN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(lineChart(chartSpec{Title: "T <1>", XLabel: "x & y", YLabel: "y"}, tt.lines...))
			checkSVGs(t, svg)
			checkContains(t, svg, tt.want, tt.not)
		})
	}
}

func TestHTMLBarChartEdgeCases(t *testing.T) {
	many := make([]float64, 200)
	manyLabels := make([]string, 200)
	for i := range many {
		many[i], manyLabels[i] = float64(i), "L"+fmtNum(i)
	}
	tests := []struct {
		name     string
		labels   []string
		values   []float64
		want     []string
		not      []string
		maxTicks int
	}{
		{"empty", nil, nil, []string{"no data"}, []string{"<rect class=\"bar\""}, 0},
		{"one bar", []string{"1.5"}, []float64{10}, []string{`<rect class="bar"`, "1.5: 10"}, []string{"no data"}, 1},
		{"zeros", []string{"a", "b"}, []float64{0, 0}, []string{">a<", ">b<"}, []string{"no data", "NaN"}, 2},
		{"escaped labels", []string{"<1&2>"}, []float64{3}, []string{"&lt;1&amp;2&gt;"}, []string{"<1&2>"}, 1},
		{"labels thinned", manyLabels, many, []string{">L0<"}, nil, 14},
		{"fewer labels than values", []string{"a"}, []float64{1, 2, 3}, []string{">a<"}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(barChart(chartSpec{Title: "hist", XLabel: "ms", YLabel: "count"}, tt.labels, tt.values))
			checkSVGs(t, svg)
			checkContains(t, svg, tt.want, tt.not)
			if n := strings.Count(svg, `class="tick" x=`); tt.maxTicks > 0 && n > tt.maxTicks+6 { // +6: y ticks
				t.Errorf("%d tick labels, want at most %d x labels plus y ticks", n, tt.maxTicks)
			}
		})
	}
}

func TestHTMLNiceAxis(t *testing.T) {
	tests := []struct {
		lo, hi         float64
		wantLo, wantHi float64
	}{
		{0, 1, 0, 1},
		{0, 97, 0, 100},
		{0, 2_030_000, 0, 2_500_000},
		{3, 3, 1, 5}, // a single value sits in the middle
		{0, 0, 0, 1},
		{-5, 5, -6, 6},
		{0.1, 0.23, 0.1, 0.25},
	}
	for _, tt := range tests {
		a := niceAxis(tt.lo, tt.hi, 5)
		if math.Abs(a.lo-tt.wantLo) > 1e-9 || math.Abs(a.hi-tt.wantHi) > 1e-9 {
			t.Errorf("niceAxis(%g, %g) = [%g, %g], want [%g, %g]", tt.lo, tt.hi, a.lo, a.hi, tt.wantLo, tt.wantHi)
		}
		if len(a.ticks) < 2 || len(a.ticks) > 12 || a.ticks[0] != a.lo {
			t.Errorf("niceAxis(%g, %g) ticks %v", tt.lo, tt.hi, a.ticks)
		}
	}
}

func TestHTMLFormatters(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtNum(100000), "100,000"},
		{fmtNum(uint64(2_000_000)), "2,000,000"},
		{fmtNum(-1234.6), "-1,235"},
		{fmtNum(12.345), "12.3"},
		{fmtNum(0.4567), "0.457"},
		{fmtNum(math.NaN()), "–"},
		{fmtBytes(uint64(812)), "812 B"},
		{fmtBytes(3400.0), "3.32 KiB"},
		{fmtBytes(uint64(128 << 30)), "128 GiB"},
		{fmtMS(12.9), "12.9"},
		{fmtMS(0.1), "0.1"},
		{fmtMS(1234.4), "1,234"},
		{fmtMicros(1.1e-6), "1.10 µs"},
		{fmtPct(0.95), "95%"},
		{fmtCauses(map[string]int{"reset": 7, "timeout": 212, "eof": 0}), "timeout 212, reset 7"},
		{fmtCauses(nil), "none"},
		{fmtTick(2_500_000), "2.5M"},
		{fmtTick(0.25), "0.25"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func renderHTML(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.String()
}

var svgElement = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// checkSVGs checks every <svg> element in page is well-formed XML and
// returns how many there are.
func checkSVGs(t *testing.T, page string) int {
	t.Helper()
	svgs := svgElement.FindAllString(page, -1)
	if open := strings.Count(page, "<svg"); open != len(svgs) {
		t.Errorf("%d <svg openings, %d closed elements", open, len(svgs))
	}
	for _, s := range svgs {
		d := xml.NewDecoder(strings.NewReader(s))
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("SVG is not well-formed XML: %v\n%.300s", err, s)
				break
			}
		}
	}
	return len(svgs)
}

// remoteRef finds anything the page would fetch: src or href to another
// host (or scheme-relative), CSS url() or @import.
var remoteRef = regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|url\(|@import`)

func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	if m := remoteRef.FindAllString(page, -1); m != nil {
		t.Errorf("page refers outside itself: %q", m)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "<link") {
		t.Error("page has a <script> or <link>")
	}
}

// checkBalanced is a rough check that the page's structure closes: each
// container element opens as often as it closes.
func checkBalanced(t *testing.T, page string) {
	t.Helper()
	for _, tag := range []string{"html", "body", "section", "div", "table", "thead", "tbody", "tr", "ul", "svg", "style"} {
		open := len(regexp.MustCompile(`<`+tag+`[\s>]`).FindAllString(page, -1))
		if closed := strings.Count(page, "</"+tag+">"); open != closed {
			t.Errorf("<%s> opened %d times, closed %d", tag, open, closed)
		}
	}
}

func checkContains(t *testing.T, s string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("lacks %q in\n%.600s", w, s)
		}
	}
	for _, n := range not {
		if strings.Contains(s, n) {
			t.Errorf("has %q in\n%.600s", n, s)
		}
	}
}
