package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

func init() { subcommands = append(subcommands, newDemoCmd) }

type demoFlags struct {
	nodes   int
	zones   string
	events  int
	fanout  string
	profile string
	verbose bool
}

func newDemoCmd() *cobra.Command {
	f := demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local mesh with zones on real UDP and show what it does",
		Long: "demo starts a Warp Mesh of several nodes in availability zones on 127.0.0.1\n" +
			"(real UDP sockets, encryption on, no broker), then publishes invalidations:\n" +
			"eventual ones, ones awaited by replicas and by zones, and shows a node\n" +
			"failing, with the latencies and the acknowledgements each call got.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 6, "number of nodes (2..64)")
	fl.StringVar(&f.zones, "zones", "eu-west-1a,eu-west-1b,eu-west-1c", "comma-separated zones, nodes are spread over them in turn")
	fl.IntVar(&f.events, "events", 2000, "eventual invalidations to publish in the throughput step")
	fl.StringVar(&f.fanout, "fanout", "auto", "fanout mode: auto, direct or relay")
	fl.StringVar(&f.profile, "profile", "local", "failure detection timing: local, lan or wan")
	fl.BoolVar(&f.verbose, "verbose", false, "log what the nodes do")
	return cmd
}

func (f demoFlags) check() (mesh.FanoutMode, []string, error) {
	if f.nodes < 2 || f.nodes > 64 {
		return 0, nil, usagef("--nodes %d out of range (2..64)", f.nodes)
	}
	if f.events < 0 || f.events > 1_000_000 {
		return 0, nil, usagef("--events %d out of range (0..1000000)", f.events)
	}
	mode, err := mesh.ParseFanoutMode(f.fanout)
	if err != nil {
		return 0, nil, usageError{err}
	}
	var zones []string
	for _, z := range strings.Split(f.zones, ",") {
		if z = strings.TrimSpace(z); z != "" {
			zones = append(zones, z)
		}
	}
	if len(zones) == 0 {
		return 0, nil, usagef("--zones: give at least one zone")
	}
	switch f.profile {
	case "local", "lan", "wan":
	default:
		return 0, nil, usagef("--profile %q unknown (want local, lan or wan)", f.profile)
	}
	return mode, zones, nil
}

func runDemo(ctx context.Context, out io.Writer, f demoFlags) error {
	mode, zones, err := f.check()
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	logger := slog.New(slog.DiscardHandler)
	if f.verbose {
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	say("Starting %d nodes in %d zones on 127.0.0.1 (UDP, encrypted, fanout %s)…", f.nodes, len(zones), mode)
	buses := make([]*mesh.MeshBus, 0, f.nodes)
	defer func() {
		for _, b := range buses {
			_ = b.Close()
		}
	}()
	for i := range f.nodes {
		o := mesh.MeshOptions{
			NodeName:   fmt.Sprintf("node-%d", i+1),
			BindAddr:   "127.0.0.1",
			Port:       -1,
			Zone:       zones[i%len(zones)],
			Region:     "demo",
			Label:      "warp-demo",
			SecretKeys: [][]byte{key},
			Profile:    f.profile,
			Fanout:     mode,
			Logger:     logger,
		}
		if i > 0 {
			o.Peers = []string{buses[0].Addr().String()}
		}
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			return err
		}
		buses = append(buses, b)
		say("  %-8s zone %-12s %s", b.Name(), o.Zone, b.Addr())
	}
	if err := waitAlive(ctx, buses, f.nodes, 20*time.Second); err != nil {
		return err
	}
	say("All %d nodes see each other (fanout in use: %s).\n", f.nodes, buses[0].Health().Mode)

	// Every node watches the "user:" keys, as a cache would.
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	watchers := make([]<-chan syncbus.Event, len(buses))
	for i, b := range buses {
		if watchers[i], err = b.SubscribePrefix(subCtx, "user:"); err != nil {
			return err
		}
	}
	pub := buses[0]
	others := f.nodes - 1

	start := time.Now()
	if err := pub.Publish(ctx, "user:42"); err != nil {
		return err
	}
	for i := 1; i < len(buses); i++ {
		if _, err := nextEvent(ctx, watchers[i], 5*time.Second); err != nil {
			return fmt.Errorf("%s: %w", buses[i].Name(), err)
		}
	}
	say("Publish(user:42): every other node dropped its copy after %v.", time.Since(start).Round(time.Microsecond))

	var rep syncbus.AckReport
	start = time.Now()
	if err := pub.PublishAndAwait(ctx, "user:43", others, syncbus.WithAckReport(&rep)); err != nil {
		return err
	}
	say("PublishAndAwait(user:43, %d): acknowledged by %v in %v.", others, rep.Nodes, time.Since(start).Round(time.Microsecond))

	start = time.Now()
	if err := pub.PublishAndAwaitTopology(ctx, "user:44", len(zones), syncbus.WithZoneQuorum(2), syncbus.WithAckReport(&rep)); err != nil {
		return err
	}
	say("PublishAndAwaitTopology(user:44, %d zones, quorum 2 per zone): zones %v in %v.", len(zones), rep.Zones, time.Since(start).Round(time.Microsecond))

	if f.events > 0 {
		drainAll(watchers)
		start = time.Now()
		for i := range f.events {
			if err := pub.Publish(ctx, fmt.Sprintf("user:%d", 1000+i)); err != nil {
				return err
			}
		}
		batches := pub.Metrics().Batches
		if err := waitDelivered(ctx, buses[1:], f.events, 10*time.Second, watchers[1:]); err != nil {
			return err
		}
		el := time.Since(start)
		say("Publish × %d: every other node received all of them after %v (%.0f events/s each), packed in %d frames.",
			f.events, el.Round(time.Millisecond), float64(f.events)/el.Seconds(), pub.Metrics().Batches-batches)
	}

	// A node fails: the awaiting calls adapt.
	victim := buses[len(buses)-1]
	say("\nStopping %s (zone %s)…", victim.Name(), victim.Health().Zone)
	_ = victim.Close()
	buses = buses[:len(buses)-1]
	if err := waitAlive(ctx, buses, f.nodes-1, 30*time.Second); err != nil {
		return err
	}
	start = time.Now()
	err = pub.PublishAndAwait(ctx, "user:45", others)
	var qe *syncbus.QuorumError
	if errors.As(err, &qe) && qe.FailFast {
		say("PublishAndAwait(user:45, %d) now fails fast in %v: %v", others, time.Since(start).Round(time.Microsecond), err)
	} else {
		say("PublishAndAwait(user:45, %d) after the failure: %v", others, err)
	}
	if err := pub.PublishAndAwait(ctx, "user:45", others-1, syncbus.WithAckReport(&rep)); err != nil {
		return err
	}
	say("PublishAndAwait(user:45, %d) succeeds: %v.", others-1, rep.Nodes)

	m := pub.Metrics()
	say("\n%s: published %d, acks received %d, retransmits %d, datagrams sent in zone %d / across zones %d, ack latency p50 ≤ %v.",
		pub.Name(), m.Published, m.AcksReceived, m.Retransmits, m.SentLocal.Messages, m.SentRemote.Messages, m.AckLatency.Quantile(0.5))
	return nil
}

// waitAlive waits until every bus sees n alive members.
func waitAlive(ctx context.Context, buses []*mesh.MeshBus, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, b := range buses {
			alive := 0
			for _, m := range b.Members() {
				if m.State.Alive() {
					alive++
				}
			}
			ok = ok && alive == n
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not converge to %d alive members within %v", n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func nextEvent(ctx context.Context, ch <-chan syncbus.Event, timeout time.Duration) (syncbus.Event, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			return ev, errors.New("subscription closed")
		}
		return ev, nil
	case <-t.C:
		return syncbus.Event{}, fmt.Errorf("no event within %v", timeout)
	case <-ctx.Done():
		return syncbus.Event{}, ctx.Err()
	}
}

func drainAll(chs []<-chan syncbus.Event) {
	for _, ch := range chs {
		for len(ch) > 0 {
			<-ch
		}
	}
}

// waitDelivered reads the watchers until each has seen n events (a resync
// counts for the events it covers).
func waitDelivered(ctx context.Context, buses []*mesh.MeshBus, n int, timeout time.Duration, chs []<-chan syncbus.Event) error {
	counts := make([]int, len(chs))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i, ch := range chs {
		for counts[i] < n {
			select {
			case ev := <-ch:
				if ev.Op == syncbus.OpResync {
					counts[i] = n
				} else {
					counts[i]++
				}
			case <-deadline.C:
				return fmt.Errorf("%s received %d of %d events within %v", buses[i].Name(), counts[i], n, timeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
