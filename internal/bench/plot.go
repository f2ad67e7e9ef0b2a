package bench

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotFormats maps the file extensions WritePlot knows to gonum/plot's
// formats.
var plotFormats = map[string]string{
	".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tiff", ".tiff": "tiff", ".eps": "eps",
}

// PlotFormat returns the image format of a plot file from its extension,
// or an error naming the extensions it knows.
func PlotFormat(file string) (string, error) {
	if f, ok := plotFormats[strings.ToLower(filepath.Ext(file))]; ok {
		return f, nil
	}
	return "", fmt.Errorf("%q: want a file ending in .png, .svg, .pdf, .jpg, .tiff or .eps", file)
}

// WritePlot draws the report in format (see PlotFormat): the latency CDFs
// of every system (eventual, awaited by replicas, awaited by zones) and
// bars of the throughput and of the bursts' times.
func (r *Report) WritePlot(w io.Writer, format string) error {
	const width, height = 30 * vg.Centimeter, 36 * vg.Centimeter
	c, err := draw.NewFormattedCanvas(width, height, format)
	if err != nil {
		return err
	}
	plots := [][]*plot.Plot{
		{r.cdfPlot("eventual latency to 4 receivers", func(s *System) *Latency { return s.Eventual }),
			r.cdfPlot("PublishAndAwait(4) / request with 4 replies", func(s *System) *Latency { return s.Await })},
		{r.cdfPlot("PublishAndAwaitTopology(3)", func(s *System) *Latency { return s.Topology }),
			r.barPlot("throughput per receiver (slowest of 4)", "invalidations/s (* some lost)", floodValue(thr, func(f *Flood) float64 { return f.Rate }))},
		{r.barPlot(fmt.Sprintf("burst of %d to 4: all have all", r.Settings.BurstEvents), "s (* incomplete)", floodValue(b4, seconds)),
			r.barPlot(fmt.Sprintf("burst of %d to 2: all have all", r.Settings.BurstEvents), "s (* incomplete)", floodValue(b2, seconds))},
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 2, PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Centimeter / 2, PadBottom: vg.Centimeter / 2, PadLeft: vg.Centimeter / 2, PadRight: vg.Centimeter / 2}
	dc := draw.New(c)
	canvases := plot.Align(plots, tiles, dc)
	for i, row := range plots {
		for j, p := range row {
			p.Draw(canvases[i][j])
		}
	}
	_, err = c.WriteTo(w)
	return err
}

var (
	thr     = func(s *System) *Flood { return s.Throughput }
	b4      = func(s *System) *Flood { return s.Burst4 }
	b2      = func(s *System) *Flood { return s.Burst2 }
	seconds = func(f *Flood) float64 { return float64(f.Seconds) }
)

// floodValue returns a figure of a flood phase, and whether that phase
// delivered everything.
func floodValue(pick func(*System) *Flood, val func(*Flood) float64) func(*System) (v float64, ok, complete bool) {
	return func(s *System) (float64, bool, bool) {
		f := pick(s)
		if f == nil {
			return 0, false, false
		}
		return val(f), true, f.Complete
	}
}

// cdfPlot draws the latency CDF of every system that has the figure, on a
// logarithmic time axis.
func (r *Report) cdfPlot(title string, pick func(*System) *Latency) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "µs (log)"
	p.Y.Label.Text = "fraction of operations"
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = 0, vg.Centimeter
	p.Add(plotter.NewGrid())
	n := 0
	for i, s := range r.Systems {
		l := (*Latency)(nil)
		if s.Missing == "" {
			l = pick(s)
		}
		if l == nil || len(l.CDF) == 0 {
			continue
		}
		pts := make(plotter.XYs, 0, len(l.CDF))
		for q, v := range l.CDF {
			if v > 0 {
				pts = append(pts, plotter.XY{X: v, Y: float64(q) / 100})
			}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			continue
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i / 7)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(s.ID, line)
		n++
	}
	if n > 0 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Y.Min, p.Y.Max = 0, 1
	return p
}

// barPlot draws one bar per system that has the figure.
func (r *Report) barPlot(title, unit string, get func(*System) (v float64, ok, complete bool)) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	var vals plotter.Values
	var names []string
	for _, s := range r.Systems {
		if s.Missing != "" {
			continue
		}
		if v, ok, complete := get(s); ok {
			vals = append(vals, v)
			name := s.ID
			if !complete {
				name += " *"
			}
			names = append(names, name)
		}
	}
	if len(vals) == 0 {
		return p
	}
	bars, err := plotter.NewBarChart(vals, vg.Centimeter)
	if err != nil {
		return p
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	p.Y.Min = 0
	return p
}
