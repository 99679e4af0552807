package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strings"
)

// palette has a distinct color for each of the harness's scenarios; the
// constant-rate ("@half") scenarios are also dashed.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#7b4173"}

// lineStyle is the stroke of scenario i named name.
func lineStyle(i int, name string) string {
	style := fmt.Sprintf(`stroke="%s"`, palette[i%len(palette)])
	if strings.Contains(name, "@") {
		style += ` stroke-dasharray="6 3"`
	}
	return style
}

// Chart draws an SVG with two panels over the seconds of each scenario:
// requests/s and p99 latency, one line per scenario.
func Chart(results []*Result) []byte {
	const (
		width, panelH = 900.0, 260.0
		left, right   = 70.0, 230.0
		top, gap      = 40.0, 60.0
	)
	var rs []*Result
	maxSec, maxRPS, maxP99 := 1, 1.0, 0.1
	for _, r := range results {
		if r.Skipped != "" || len(r.Series) == 0 {
			continue
		}
		rs = append(rs, r)
		for _, p := range r.Series {
			maxSec = max(maxSec, p.Second)
			maxRPS = math.Max(maxRPS, p.RPS)
			maxP99 = math.Max(maxP99, p.P99ms)
		}
	}
	maxRPS, maxP99 = niceCeil(maxRPS), niceCeil(maxP99)
	height := top + 2*panelH + gap + 50
	plotW := width - left - right
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" font-weight="bold">Sluice benchmark: each scenario over time</text>`+"\n", left)
	panels := []struct {
		title string
		y0    float64
		maxV  float64
		value func(Point) float64
		fmt   string
	}{
		{"requests/s (served by the upstream)", top, maxRPS, func(p Point) float64 { return p.RPS }, "%.0f"},
		{"p99 latency, ms", top + panelH + gap, maxP99, func(p Point) float64 { return p.P99ms }, "%.2f"},
	}
	for _, pn := range panels {
		y0, h := pn.y0+20, panelH-20
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", left, pn.y0+10, html.EscapeString(pn.title))
		for i := 0; i <= 4; i++ {
			y := y0 + h - h*float64(i)/4
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">`+pn.fmt+`</text>`+"\n", left-6, y+4, pn.maxV*float64(i)/4)
		}
		for s := 0; s <= maxSec; s += max(1, maxSec/10) {
			x := left + plotW*float64(s)/float64(maxSec)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%ds</text>`+"\n", x, y0+h+16, s)
		}
		for i, r := range rs {
			var pts bytes.Buffer
			for _, p := range r.Series {
				x := left + plotW*float64(p.Second)/float64(maxSec)
				y := y0 + h - h*math.Min(pn.value(p)/pn.maxV, 1)
				fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
			}
			fmt.Fprintf(&b, `<polyline fill="none" %s stroke-width="2" points="%s"/>`+"\n", lineStyle(i, r.Name), bytes.TrimSpace(pts.Bytes()))
		}
	}
	for i, r := range rs {
		y := top + 30 + float64(i)*20
		x := width - right + 20
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" %s stroke-width="3"/>`+"\n", x, y, x+20, y, lineStyle(i, r.Name))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", x+26, y+4, html.EscapeString(r.Name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
