package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/internal/bench"
)

// benchFlags are the flags of warp bench.
type benchFlags struct {
	quick    bool
	jsonOut  bool
	plot     string
	systems  []string
	quiet    bool
	ops      int
	events   int
	burst    int
	cpuProf  string
	progress io.Writer
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the mesh side by side with UDP, NATS, Redis and Kafka on this machine",
		Long: "bench measures, in one run on 127.0.0.1, the raw UDP floor of an acknowledged\n" +
			"fanout, a 5-node Warp Mesh (zones 2+2+1, encrypted), NATS core, Redis pub/sub\n" +
			"and Kafka with their raw clients, and the Warp bridges over the same servers:\n" +
			"eventual latency to 4 receivers, PublishAndAwait(4), PublishAndAwaitTopology(3),\n" +
			"throughput per receiver, bursts to 4 and to 2 receivers (time until all have\n" +
			"all, lost and resynced events), bytes and messages per invalidation, and CPU\n" +
			"per million delivered. Each figure comes with its ratio to the best\n" +
			"alternative measured in the same run.\n\n" +
			"It starts what it needs by itself and stops it afterwards: an embedded\n" +
			"nats-server, a redis-server child process when the binary is on PATH (else\n" +
			"the Redis rows say why they are missing), and an in-process Kafka (kfake).\n" +
			"The full run takes up to 5 minutes, --quick up to 90 seconds. It exits 1 when\n" +
			"a phase fails, never because of a timing.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			f.progress = cmd.ErrOrStderr()
			return runBench(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.quick, "quick", false, "a short run of every phase, within 90 seconds")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON instead of a table")
	fl.StringVar(&f.plot, "plot", "", "also draw latency CDFs and throughput bars into this file (.png, .svg, .pdf, .jpg, .tiff or .eps)")
	fl.StringSliceVar(&f.systems, "systems", nil, "comma-separated systems to measure (default all): "+strings.Join(bench.AllSystems, ", "))
	fl.BoolVar(&f.quiet, "quiet", false, "do not show progress on stderr")
	fl.IntVar(&f.ops, "ops", 0, "operations per latency figure (default 2000, 300 with --quick)")
	fl.IntVar(&f.events, "events", 0, "invalidations of the throughput phase (default 500000, 60000 with --quick)")
	fl.IntVar(&f.burst, "burst", 0, "invalidations of each burst (default 300000, 40000 with --quick)")
	fl.StringVar(&f.cpuProf, "cpuprofile", "", "write a CPU profile of the run (this process: every node, client and embedded server) to this file, for go tool pprof")
	return cmd
}

// check validates the flags before anything starts.
func (f benchFlags) check() error {
	if err := bench.CheckSystems(f.systems); err != nil {
		return usagef("--systems: %v", err)
	}
	if f.plot != "" {
		if _, err := bench.PlotFormat(f.plot); err != nil {
			return usagef("--plot %v", err)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"--ops", f.ops}, {"--events", f.events}, {"--burst", f.burst}} {
		if n.v < 0 {
			return usagef("%s %d is negative", n.name, n.v)
		}
	}
	return nil
}

func runBench(cmd *cobra.Command, f benchFlags) error {
	cfg := bench.Config{Quick: f.quick, Systems: f.systems, LatencyOps: f.ops, ThroughputEvents: f.events, BurstEvents: f.burst}
	if !f.quiet {
		cfg.Progress = f.progress
	}
	if f.cpuProf != "" {
		fh, err := os.Create(f.cpuProf)
		if err != nil {
			return usagef("--cpuprofile: %v", err)
		}
		if err := pprof.StartCPUProfile(fh); err != nil {
			_ = fh.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = fh.Close()
		}()
	}
	rep, err := bench.Run(cmd.Context(), cfg)
	if err != nil {
		return usageError{err}
	}
	out := cmd.OutOrStdout()
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteTable(out); err != nil {
		return err
	}
	if f.plot != "" {
		if err := writePlot(rep, f.plot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	if err := cmd.Context().Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if rep.Failed() {
		return errors.New(fmt.Sprint(len(rep.Errors), " phase(s) failed: ", strings.Join(rep.Errors, "; ")))
	}
	return nil
}

func writePlot(rep *bench.Report, file string) error {
	format, err := bench.PlotFormat(file)
	if err != nil {
		return err
	}
	fh, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := rep.WritePlot(fh, format); err != nil {
		_ = fh.Close()
		return err
	}
	return fh.Close()
}
