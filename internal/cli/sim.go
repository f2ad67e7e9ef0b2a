package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/internal/input"
	"github.com/warpmesh/warp/sim"
)

type simFlags struct {
	list   bool
	config string
	json   string
	plot   string
	seed   uint64
	quiet  bool
}

func newSimCmd() *cobra.Command {
	f := simFlags{}
	cmd := &cobra.Command{
		Use:   "sim [SCENARIO | --config FILE]",
		Short: "Run Warp Mesh nodes on a simulated network and report delivery, latency and traffic",
		Long: "sim runs real Warp Mesh nodes in this process on a simulated network: zones\n" +
			"with latency, jitter, loss and bandwidth between them, and faults over time\n" +
			"(partitions, crashes, pauses, restarts). It publishes events as the scenario\n" +
			"says and reports, in simulated time, how many reached each node and zone, how\n" +
			"fast, how long acknowledgements took, and the traffic within and across zones,\n" +
			"counted on the simulated wire.\n\n" +
			"Run a ready-made scenario by name (warp sim --list names them) or describe\n" +
			"your own topology in a YAML or JSON file (--config). --seed replays a run's\n" +
			"random choices.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("sim takes at most one scenario name, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSim(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.list, "list", false, "list the ready-made scenarios and exit")
	fl.StringVar(&f.config, "config", "", "run the scenario described in this YAML or JSON file")
	fl.StringVar(&f.json, "json", "", "also write the report as JSON to this file")
	fl.StringVar(&f.plot, "plot", "", "also draw latency CDFs and delivery over time to this .svg or .png file")
	fl.Uint64Var(&f.seed, "seed", 0, "seed for every random choice of the run (default: the scenario's)")
	fl.BoolVar(&f.quiet, "quiet", false, "do not show the progress bar")
	return cmd
}

// loadSimConfig reads and checks a scenario file.
func loadSimConfig(path string) (sim.Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return sim.Scenario{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, input.MaxScenarioBytes+1))
	if err != nil {
		return sim.Scenario{}, err
	}
	sc, err := input.ParseScenario(data, path)
	if err != nil {
		return sim.Scenario{}, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

func runSim(cmd *cobra.Command, f simFlags, args []string) error {
	out := cmd.OutOrStdout()
	if f.list {
		return listScenarios(out)
	}
	var sc sim.Scenario
	switch {
	case len(args) == 1 && f.config != "":
		return usagef("give a scenario name or --config, not both")
	case len(args) == 1:
		var ok bool
		if sc, ok = sim.ScenarioNamed(args[0]); !ok {
			return usagef("unknown scenario %q (warp sim --list names them)", args[0])
		}
	case f.config != "":
		var err error
		if sc, err = loadSimConfig(f.config); err != nil {
			return usageError{err}
		}
	default:
		return usagef("name a scenario (warp sim --list) or give --config FILE")
	}
	if f.plot != "" {
		if ext := strings.ToLower(filepath.Ext(f.plot)); ext != ".svg" && ext != ".png" {
			return usagef("--plot %q: the file must end in .svg or .png", f.plot)
		}
	}
	if cmd.Flags().Changed("seed") {
		sc.Seed = f.seed
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && sc.NodeCount() > largeSim {
		// A thousand nodes hold about 2.5 GiB; the collector's default
		// headroom would double that. A soft limit keeps the process
		// near what it uses (GOMEMLIMIT overrides it).
		debug.SetMemoryLimit(largeSimMemory)
	}
	var progress func(sim.Progress)
	if !f.quiet {
		bar := newSimBar(cmd.ErrOrStderr(), sc)
		defer bar.finish()
		progress = bar.update
	}
	rep, err := sim.Run(cmd.Context(), sc, sim.RunOptions{Progress: progress})
	if err != nil {
		if rep == nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "warp: %v\n", err)
	}
	if err := rep.WriteTable(out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nreplay with: warp sim %s --seed %d\n", simReplayArg(args, f), rep.Seed)
	if f.json != "" {
		data, err := rep.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.json, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if f.plot != "" {
		if err := writeSimPlot(rep, f.plot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	return err
}

// Above largeSim nodes, warp sim runs with a soft memory limit of
// largeSimMemory bytes unless GOMEMLIMIT says otherwise.
const (
	largeSim       = 500
	largeSimMemory = 3584 << 20
)

func simReplayArg(args []string, f simFlags) string {
	if len(args) == 1 {
		return args[0]
	}
	return "--config " + f.config
}

func listScenarios(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range sim.Scenarios() {
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Description)
	}
	return tw.Flush()
}

// simBar shows a run's progress: the publishing and settling phases fill
// the bar in proportion to their simulated length.
type simBar struct {
	w               io.Writer
	bar             *progressbar.ProgressBar
	publish, settle time.Duration
}

const simBarMax = 1000

func newSimBar(w io.Writer, sc sim.Scenario) *simBar {
	settle := sc.Settle
	if settle == 0 {
		settle = sim.DefaultSettle
	}
	b := progressbar.NewOptions(simBarMax,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("starting"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(false),
	)
	return &simBar{w: w, bar: b, publish: sc.Duration, settle: settle}
}

func (b *simBar) update(p sim.Progress) {
	total := b.publish + b.settle
	if total <= 0 {
		return
	}
	var at time.Duration
	switch p.Phase {
	case "publishing":
		at = p.Done
	case "settling":
		at = b.publish + p.Done*b.settle/max(p.Total, 1)
	case "stopping":
		at = total
	}
	b.bar.Describe(fmt.Sprintf("%-10s", p.Phase))
	_ = b.bar.Set(int(int64(at) * simBarMax / int64(total)))
}

func (b *simBar) finish() {
	_ = b.bar.Finish()
	fmt.Fprintln(b.w)
}
