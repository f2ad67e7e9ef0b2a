package cli

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/warpmesh/warp/sim"
)

// writeSimPlot draws a report's delivery-latency CDFs per zone pair, its
// acknowledgement-latency CDFs per mode and its deliveries over time with
// the fault windows shaded, one above the other, to an .svg or .png file.
func writeSimPlot(rep *sim.Report, path string) error {
	plots := [][]*plot.Plot{{latencyPlot(rep)}, {ackPlot(rep)}, {timelinePlot(rep)}}
	const width, height = 8 * vg.Inch, 13 * vg.Inch
	var canvas interface {
		vg.CanvasSizer
		io.WriterTo
	}
	var dc draw.Canvas
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		c := vgsvg.New(width, height)
		canvas, dc = c, draw.New(c)
	case ".png":
		c := vgimg.New(width, height)
		canvas, dc = vgimg.PngCanvas{Canvas: c}, draw.New(c)
	default:
		return fmt.Errorf("%q: want a .svg or .png file", path)
	}
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadX: vg.Points(10), PadY: vg.Points(24),
		PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	cs := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(cs[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// cdfPoints turns percentiles into (latency, fraction) points, with a
// floor for a logarithmic axis.
func cdfPoints(cdf []float64, floor float64) plotter.XYs {
	pts := make(plotter.XYs, len(cdf))
	for i, v := range cdf {
		pts[i].X = math.Max(v, floor)
		pts[i].Y = float64(i) / float64(len(cdf)-1)
	}
	return pts
}

// cdfPlot draws one CDF per series on a logarithmic latency axis when the
// latencies span more than two decades.
func cdfPlot(title string, names []string, cdfs [][]float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "milliseconds (simulated)"
	p.Y.Label.Text = "fraction"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), 0.0
	for _, c := range cdfs {
		if len(c) > 0 {
			lo, hi = math.Min(lo, c[0]), math.Max(hi, c[len(c)-1])
		}
	}
	floor := 0.0
	if hi > 0 && hi/math.Max(lo, 0.01) > 100 {
		floor = math.Max(lo, 0.01)
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if len(cdfs) == 0 {
		p.Title.Text += " (none)"
		return p
	}
	for i, c := range cdfs {
		if len(c) < 2 {
			continue
		}
		l, err := plotter.NewLine(cdfPoints(c, floor))
		if err != nil {
			continue
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(names[i], l)
	}
	return p
}

func latencyPlot(rep *sim.Report) *plot.Plot {
	var names []string
	var cdfs [][]float64
	for _, l := range rep.Latency {
		names = append(names, l.From+" → "+l.To)
		cdfs = append(cdfs, l.CDF)
	}
	return cdfPlot(fmt.Sprintf("%s: delivery latency by zone pair", rep.Scenario), names, cdfs)
}

func ackPlot(rep *sim.Report) *plot.Plot {
	var names []string
	var cdfs [][]float64
	for _, a := range rep.Acks {
		names = append(names, fmt.Sprintf("%s (%d ok, %d failed)", a.Mode, a.OK, a.Failed))
		cdfs = append(cdfs, a.CDF)
	}
	return cdfPlot("acknowledgement latency of awaited publishes", names, cdfs)
}

// faultColor is the shade of fault windows.
var faultColor = color.NRGBA{R: 220, G: 60, B: 60, A: 48}

func timelinePlot(rep *sim.Report) *plot.Plot {
	p := plot.New()
	p.Title.Text = "events delivered (all nodes) and published over time"
	p.X.Label.Text = "seconds (simulated)"
	p.Y.Label.Text = "events per interval"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	delivered := make(plotter.XYs, len(rep.Timeline))
	published := make(plotter.XYs, len(rep.Timeline))
	top := 1.0
	for i, t := range rep.Timeline {
		delivered[i] = plotter.XY{X: t.AtMs / 1000, Y: float64(t.Delivered)}
		published[i] = plotter.XY{X: t.AtMs / 1000, Y: float64(t.Published)}
		top = math.Max(top, float64(t.Delivered))
	}
	for i, f := range rep.Faults {
		to := math.Max(f.ToMs, f.FromMs+1)
		poly, err := plotter.NewPolygon(plotter.XYs{
			{X: f.FromMs / 1000, Y: 0}, {X: to / 1000, Y: 0}, {X: to / 1000, Y: top}, {X: f.FromMs / 1000, Y: top},
		})
		if err != nil {
			continue
		}
		poly.Color = faultColor
		poly.LineStyle.Width = 0
		p.Add(poly)
		if i < 4 {
			p.Legend.Add(f.Label, poly)
		}
	}
	if len(rep.Timeline) > 1 {
		if l, err := plotter.NewLine(delivered); err == nil {
			l.Color = plotutil.Color(0)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add("delivered", l)
		}
		if l, err := plotter.NewLine(published); err == nil {
			l.Color = plotutil.Color(1)
			l.Dashes = plotutil.Dashes(1)
			p.Add(l)
			p.Legend.Add("published", l)
		}
	}
	p.Y.Min = 0
	return p
}
