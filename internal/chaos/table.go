package chaos

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the summary as a two-column table, violations last.
func (s *Summary) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", name, fmt.Sprintf(format, args...))
	}
	row("nodes / subscriptions / faults", "%d / %d / %d", s.Nodes, s.Streams, s.Faults)
	row("events published", "%d (plain %d, replicas %d, zones %d); %d sent",
		s.Publishes, s.ByKind[Plain], s.ByKind[Replicas], s.ByKind[Zones], s.Sent)
	row("awaited successes", "%d", s.AwaitedOK)
	row("failures by reason", "%s", reasons(s.Failures))
	row("deliveries", "%d (%d of no publish)", s.Deliveries, s.Stray)
	row("resyncs", "%d", s.Resyncs)
	row("owed deliveries", "%d: %d reached, %d covered by a resync; %d (event, node) pairs excused", s.Owed, s.Reached, s.Covered, s.Excused)
	row("acks checked", "%d (%d unverifiable)", s.AckChecks, s.AckUnverifiable)
	row("peak goroutines / memory", "%d / %.1f MiB (ceilings %d / %.0f MiB, %d samples)",
		s.PeakGoroutines, mib(s.PeakMemoryBytes), s.MaxGoroutines, mib(s.MaxMemoryBytes), s.Samples)
	row("grace / settle", "%v / %v", s.Grace, s.Settle)
	for inv := 1; inv < len(s.Violations); inv++ {
		row(fmt.Sprintf("violations: %s", invariantNames[inv]), "%d", s.Violations[inv])
	}
	row("violations", "%d", s.TotalViolations())
	return tw.Flush()
}

func reasons(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
