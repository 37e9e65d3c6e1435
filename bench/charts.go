package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The charts make bench writes beside its table (docs/): drawn from the
// same results, so they are never out of step with it.
const (
	chartCPU     = "bench-cpu.svg"
	chartLatency = "bench-latency.svg"
	chartMemory  = "bench-memory.svg"
)

// systemColor keeps each system's colour the same in every chart.
func systemColor(name string) color.Color {
	switch name {
	case "edgeproxy":
		return color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	case "nginx", "nginx proxy_cache":
		return color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	default:
		return color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
	}
}

// writeCharts draws the three charts into dir; a section that did not run
// draws nothing.
func (r *runner) writeCharts(dir string, scenarios []scenario, rate []rateResult, idle []idleResult) ([]string, error) {
	var written []string
	for _, c := range []struct {
		file string
		draw func(string) (bool, error)
	}{
		{chartCPU, func(f string) (bool, error) { return r.cpuChart(f, scenarios) }},
		{chartLatency, func(f string) (bool, error) { return latencyChart(f, rate) }},
		{chartMemory, func(f string) (bool, error) { return memoryChart(f, idle) }},
	} {
		path := filepath.Join(dir, c.file)
		ok, err := c.draw(path)
		if err != nil {
			return written, fmt.Errorf("%s: %w", c.file, err)
		}
		if ok {
			written = append(written, path)
		}
	}
	return written, nil
}

// cpuChart: one panel per scenario (each with its own scale: a 1 MiB
// response costs fifty times a coupon), a bar per system, CPU µs per
// request, the ratio to the anchor on each bar's label.
func (r *runner) cpuChart(file string, scenarios []scenario) (bool, error) {
	var panels []*plot.Plot
	for _, sc := range scenarios {
		if r.find(sc.name, sc.anchor).rps == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = sc.name
		p.Y.Label.Text = "CPU µs / request"
		p.Y.Min = 0
		for i, name := range sc.systems {
			x := r.find(sc.name, name)
			bar, err := plotter.NewBarChart(plotter.Values{x.cpuUs}, vg.Points(22))
			if err != nil {
				return false, err
			}
			bar.Color = systemColor(name)
			bar.LineStyle.Width = 0
			bar.Offset = vg.Points(float64(i-len(sc.systems)/2) * 26)
			if len(sc.systems)%2 == 0 {
				bar.Offset += vg.Points(13)
			}
			p.Add(bar)
			label := "anchor"
			if name != sc.anchor {
				label = fmt.Sprintf("%.2f×", x.cpuRatio)
			}
			p.Legend.Add(fmt.Sprintf("%s (%s)", short(name), label), bar)
		}
		p.Legend.Top = true
		p.Legend.TextStyle.Font.Size = vg.Points(7)
		p.X.Tick.Marker = plot.ConstantTicks(nil)
		// Room above the bars for the legend.
		top := 0.0
		for _, name := range sc.systems {
			top = math.Max(top, r.find(sc.name, name).cpuUs)
		}
		p.Y.Max = top * 1.6
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return false, nil
	}
	cols := 4
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	w, h := vg.Points(float64(cols)*210), vg.Points(float64(rows)*200+30)
	c, err := draw.NewFormattedCanvas(w, h, strings.TrimPrefix(filepath.Ext(file), "."))
	if err != nil {
		return false, err
	}
	dc := draw.New(c)
	title := fmt.Sprintf("CPU per request, median of %d rounds (ratio: median of each round's ratio to the anchor)", r.s.rounds)
	dc.FillText(draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 12), Handler: plot.DefaultTextHandler, XAlign: draw.XCenter},
		vg.Point{X: w / 2, Y: h - vg.Points(16)}, title)
	dc.Max.Y -= vg.Points(30)
	canvases := plot.Align(grid, draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(12), PadY: vg.Points(12), PadLeft: vg.Points(6), PadRight: vg.Points(6), PadBottom: vg.Points(6)}, dc)
	for i, p := range panels {
		p.Draw(canvases[i/cols][i%cols])
	}
	return true, save(c, file)
}

func short(system string) string {
	if system == "bare fasthttp" {
		return "bare"
	}
	return system
}

// latencyChart: the constant-rate latency at p50, p99, p99.9 and the
// maximum, a line per run, on a log scale (a stall is three decades up).
func latencyChart(file string, rate []rateResult) (bool, error) {
	if len(rate) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency at a constant %.0f req/s (128 B pass-through), each run", rate[0].rate)
	p.Y.Label.Text = "latency, ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "p50"}, {Value: 1, Label: "p99"}, {Value: 2, Label: "p99.9"}, {Value: 3, Label: "max"}})
	p.X.Min, p.X.Max = -0.2, 3.2
	p.Legend.Top = true
	p.Legend.Left = true
	seen := map[string]bool{}
	for _, x := range rate {
		pts := plotter.XYs{}
		for i, d := range []time.Duration{x.p50, x.p99, x.p999, x.max} {
			pts = append(pts, plotter.XY{X: float64(i), Y: math.Max(float64(d)/float64(time.Millisecond), 0.001)})
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return false, err
		}
		l.Color, s.Color = systemColor(x.system), systemColor(x.system)
		s.Shape = draw.CircleGlyph{}
		p.Add(l, s)
		if !seen[x.system] {
			seen[x.system] = true
			p.Legend.Add(x.system, l, s)
		}
	}
	return true, p.Save(vg.Points(560), vg.Points(340), file)
}

// memoryChart: RSS per idle keep-alive connection, a bar per system and
// connection count.
func memoryChart(file string, idle []idleResult) (bool, error) {
	if len(idle) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "Memory per idle keep-alive connection (RSS growth / connections)"
	p.Y.Label.Text = "KiB per connection"
	p.Y.Min = 0
	var ticks []plot.Tick
	top := 0.0
	for i, x := range idle {
		per := float64(x.after-x.before) / float64(x.conns)
		top = math.Max(top, per)
		bar, err := plotter.NewBarChart(plotter.Values{per}, vg.Points(30))
		if err != nil {
			return false, err
		}
		bar.XMin = float64(i)
		bar.Color = systemColor(x.system)
		bar.LineStyle.Width = 0
		p.Add(bar)
		label := fmt.Sprintf("%s\n%d conns", x.system, x.conns)
		if x.lever != "" {
			label = fmt.Sprintf("%s\n%s\n%d conns", x.system, x.lever, x.conns)
		}
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: label})
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: float64(i), Y: per}}, Labels: []string{fmt.Sprintf("%.1f", per)}})
		if err != nil {
			return false, err
		}
		l.Offset = vg.Point{X: -vg.Points(8), Y: vg.Points(3)}
		p.Add(l)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.6, float64(len(idle))-0.4
	p.Y.Max = top * 1.2
	return true, p.Save(vg.Points(float64(max(len(idle), 3))*110+80), vg.Points(320), file)
}

func save(c vg.CanvasWriterTo, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
