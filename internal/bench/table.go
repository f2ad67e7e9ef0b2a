package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report as text: the machine, the table of every
// figure with its ratio to the best alternative, the targets, what is
// missing and what failed.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	m := r.Machine
	fmt.Fprintf(&b, "warp bench (%s run, %.0f s): %d CPUs", mode, float64(r.Elapsed), m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(&b, ", %s", m.CPUModel)
	}
	fmt.Fprintf(&b, ", %s, %s", m.Go, m.OS)
	if m.LoadAverage != "" {
		fmt.Fprintf(&b, ", load average %s at the start", m.LoadAverage)
	}
	b.WriteString("\n")
	if servers := r.sortedServers(); len(servers) > 0 {
		fmt.Fprintf(&b, "servers: %s\n", strings.Join(servers, "; "))
	}
	st := r.Settings
	fmt.Fprintf(&b, "%d ops per latency figure (after %d of warm-up), throughput over %d invalidations, bursts of %d; keys of %d-%d bytes; every receiver stores each key in a map\n\n",
		st.LatencyOps, st.WarmupOps, st.ThroughputEvents, st.BurstEvents, st.KeyBytes[0], st.KeyBytes[1])

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tsystem\tvalue\tvs best alternative")
	last := ""
	for _, row := range r.Rows {
		fig := ""
		if row.Figure != last {
			fig = row.Figure + " (" + row.Unit + ")"
			last = row.Figure
		}
		val := formatValue(row.Value, row.Unit)
		if !row.Valid {
			val += " *"
		}
		ratio := ""
		if row.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f × %s", row.Ratio, row.Best)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fig, row.System, val, ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("* incomplete: some receiver missed events (lost or announced by resync); never counted as the best alternative\n")
	b.WriteString("ratios: the value over the best other system's in this run (the floor excluded); for throughput, above 1 is better, for the rest below 1\n")

	if len(r.Targets) > 0 {
		b.WriteString("\ntargets of the mesh (issue 14):\n")
		for _, t := range r.Targets {
			switch {
			case t.Missing != "":
				fmt.Fprintf(&b, "  [ ?? ] %s: %s\n", t.Goal, t.Missing)
			default:
				mark := "  [ ok ]"
				if !t.Met {
					mark = "  [miss]"
				}
				fmt.Fprintf(&b, "%s %s: %.2f", mark, t.Goal, t.Ratio)
				if t.Note != "" {
					fmt.Fprintf(&b, " (%s)", t.Note)
				}
				b.WriteString("\n")
			}
		}
	}
	b.WriteString("\nsystems:\n")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, "  %s: %s\n", s.ID, s.Name)
		if s.Missing != "" {
			fmt.Fprintf(&b, "      missing: %s\n", s.Missing)
		}
		if s.Error != "" {
			fmt.Fprintf(&b, "      FAILED: %s\n", s.Error)
		}
		for _, l := range []*Latency{s.Eventual, s.Await, s.Topology} {
			if l != nil {
				fmt.Fprintf(&b, "      %s: %d ops", l.What, l.Ops)
				if l.Failed > 0 {
					fmt.Fprintf(&b, ", %d failed", l.Failed)
				}
				b.WriteString("\n")
			}
		}
		for _, f := range []struct {
			name string
			f    *Flood
		}{{"throughput", s.Throughput}, {"burst to 4", s.Burst4}, {"burst to 2", s.Burst2}} {
			if f.f != nil {
				fmt.Fprintf(&b, "      %s: %d events offered in %.3f s (%d refused), delivered %v, %d lost, %d resyncs\n",
					f.name, f.f.Events, float64(f.f.PublishSeconds), f.f.PublishErrors, f.f.Delivered, f.f.Lost, f.f.Resyncs)
			}
		}
		if s.UnbatchedBytes > 0 {
			fmt.Fprintf(&b, "      idle publisher (unbatched): %.1f bytes and %.2f messages per invalidation\n", s.UnbatchedBytes, s.UnbatchedMessages)
		}
		if s.CPUScope != "" {
			fmt.Fprintf(&b, "      CPU counted: %s\n", s.CPUScope)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "      note: %s\n", n)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "\n%d failed:\n", len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatValue prints v with a precision that suits its unit and size.
func formatValue(v float64, unit string) string {
	switch {
	case unit == "inv/s" && v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case unit == "inv/s" && v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + " k"
	case unit == "events":
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
