package report

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot draws fan-out latency (p50 and p99) against subscribers for every server run
// (v2 clients), and Jetsocket's with v4 clients when the run had them.
func (r *Run) Plot(path string) error {
	p := plot.New()
	p.Title.Text = "Fan-out latency against subscribers (one channel)"
	p.X.Label.Text = "subscribers (N)"
	p.Y.Label.Text = "delivery latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	series := []struct {
		server string
		client string
		label  string
		color  color.RGBA
		dashed bool
	}{
		{"jetsocket", "v2", "jetsocket p99", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, false},
		{"jetsocket", "v2", "jetsocket p50", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, true},
		{"node", "v2", "node socket.io 4 p99", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, false},
		{"node", "v2", "node socket.io 4 p50", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, true},
		{"floor", "v2", "floor (bare write loop) p99", color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, false},
		{"floor", "v2", "floor (bare write loop) p50", color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, true},
		{"jetsocket", "v4", "jetsocket, v4 clients, p99", color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, false},
		{"jetsocket", "v4", "jetsocket, v4 clients, p50", color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, true},
		{"node", "v4", "node socket.io 4, v4 clients, p99", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, false},
		{"node", "v4", "node socket.io 4, v4 clients, p50", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, true},
	}
	plotted := 0
	for i, s := range series {
		var pts plotter.XYs
		for _, n := range r.Settings.Ns {
			x := r.FindClient(s.server, s.client, n)
			if x == nil {
				continue
			}
			v := x.LatencyP99
			if i%2 == 1 {
				v = x.LatencyP50
			}
			if v > 0 {
				pts = append(pts, plotter.XY{X: float64(n), Y: v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", s.label, err)
		}
		line.Color, points.Color = s.color, s.color
		line.Width = vg.Points(2)
		points.Shape = draw.CircleGlyph{}
		if s.dashed {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
			points.Shape = draw.BoxGlyph{}
		}
		p.Add(line, points)
		p.Legend.Add(s.label, line, points)
		plotted++
	}
	if plotted == 0 {
		// gonum panics on a log axis with no positive value; an empty plot says enough.
		p.Y.Scale, p.Y.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
