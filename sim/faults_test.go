package sim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/sim"
	"github.com/warpmesh/warp/syncbus"
)

// run runs a scenario and fails the test if it does not complete.
func run(t *testing.T, sc sim.Scenario) *sim.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := sim.Run(ctx, sc, sim.RunOptions{})
	if err != nil {
		t.Fatalf("%v", err)
	}
	var acks []string
	for _, a := range rep.Acks {
		acks = append(acks, fmt.Sprintf("%s: %d ok, %d failed, p99 %.1fms", a.Mode, a.OK, a.Failed, a.P99))
	}
	t.Logf("%s: %d published, delivery %+v, acks %v, failed awaits %v, resyncs %d, repairs %d, retransmissions %d, drops %+v",
		sc.Name, rep.Published, rep.Delivery, acks, rep.FailedAwaits, rep.Resyncs, rep.Repairs, rep.Retransmissions, rep.Network.Drops)
	return rep
}

// silentNodes lists the nodes that lost events without a resync.
func silentNodes(rep *sim.Report) []string {
	var out []string
	for _, n := range rep.ByNode {
		if n.Silent > 0 {
			out = append(out, fmt.Sprintf("%s (%d)", n.Node, n.Silent))
		}
	}
	return out
}

func threeZones(perZone int) []sim.ZoneSpec {
	return []sim.ZoneSpec{{Name: "a", Nodes: perZone}, {Name: "b", Nodes: perZone}, {Name: "c", Nodes: perZone}}
}

// TestLossDelivery: with 5% of datagrams lost on every link, at least
// 99.9% of the events reach every node within one second of simulated
// time, and every one that never arrives is announced by a resync.
func TestLossDelivery(t *testing.T) {
	rep := run(t, sim.Scenario{
		Name: "loss", Seed: testSeed(t, 21),
		Zones:   threeZones(3),
		Intra:   sim.Link{Latency: 200 * time.Microsecond, Loss: 0.05},
		Inter:   sim.Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond, Loss: 0.05},
		Publish: []sim.Publisher{{Rate: 100}},
		// Long enough for a few thousand deliveries, so that 99.9% means
		// something.
		Duration: 5 * time.Second,
	})
	if rep.Delivery.Expected < 4000 {
		t.Fatalf("only %d deliveries expected", rep.Delivery.Expected)
	}
	if rep.Network.Drops.Loss == 0 {
		t.Fatal("the links lost nothing")
	}
	if r := rep.Delivery.RatioWithin; r < 0.999 {
		t.Errorf("%.4f%% delivered within %vms, want at least 99.9%%", 100*r, rep.WindowMs)
	}
	if s := silentNodes(rep); len(s) > 0 {
		t.Errorf("events lost without a resync on %v", s)
	}
}

// startCluster starts a cluster of nodes named ZONE-N.
func startCluster(t *testing.T, cfg sim.ClusterConfig, zones []sim.ZoneSpec) *sim.Cluster {
	t.Helper()
	for _, z := range zones {
		for i := range z.Nodes {
			cfg.Nodes = append(cfg.Nodes, sim.NodeSpec{Name: fmt.Sprintf("%s-%d", z.Name, i+1), Zone: z.Name})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := sim.NewCluster(ctx, cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// simCtx returns a context that ends after d of simulated time.
func simCtx(t *testing.T, c *sim.Cluster, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), c.Network().Wall(d))
	t.Cleanup(cancel)
	return ctx
}

// TestPartitionTopology: with one of three zones cut off,
// PublishAndAwaitTopology for 2 zones succeeds and for 3 fails fast with
// ErrQuorumNotSatisfied once the zone is known down; after the heal it
// succeeds again within seconds (at most the membership's rejoin period,
// 15s in the local profile).
func TestPartitionTopology(t *testing.T) {
	c := startCluster(t, sim.ClusterConfig{
		Seed:      testSeed(t, 31),
		Intra:     sim.Link{Latency: 200 * time.Microsecond},
		Inter:     sim.Link{Latency: 2 * time.Millisecond},
		Profile:   "local",
		Heartbeat: 300 * time.Millisecond,
	}, threeZones(2))
	pub := c.NodeNamed("a-1").Bus()
	if err := pub.PublishAndAwaitTopology(simCtx(t, c, 5*time.Second), "before", 3); err != nil {
		t.Fatalf("before the partition: %v", err)
	}

	p := c.Network().PartitionZones([]string{"c"}, nil, false)
	if err := pub.PublishAndAwaitTopology(simCtx(t, c, 5*time.Second), "two", 2); err != nil {
		t.Errorf("2 zones during the partition: %v", err)
	}
	warptest.Eventually(t, c.Network().Wall(30*time.Second), func() bool {
		return pub.Health().Zones == 2
	}, "a-1 to see zone c down: %v", func() string { return fmt.Sprint(pub.Members()) })
	err := pub.PublishAndAwaitTopology(simCtx(t, c, 5*time.Second), "three", 3)
	var qe *syncbus.QuorumError
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) || !errors.As(err, &qe) || !qe.FailFast {
		t.Errorf("3 zones with one cut off: %v, want a fast ErrQuorumNotSatisfied", err)
	}

	p.Heal()
	healed := c.Network().Now()
	var last error
	warptest.Eventually(t, c.Network().Wall(20*time.Second), func() bool {
		last = pub.PublishAndAwaitTopology(simCtx(t, c, time.Second), "again", 3)
		return last == nil
	}, "3 zones after the heal: %v", func() string { return fmt.Sprint(last) })
	t.Logf("3 zones acknowledged %v (simulated) after the heal", c.Network().Now()-healed)
}

// TestRelayCrashAwaited: the relay of a zone crashes while it holds an
// awaited event; every awaited publish completes through another relay or
// fails with the typed error by its deadline, and none succeeds falsely
// (every node that acknowledged an event delivered it).
func TestRelayCrashAwaited(t *testing.T) {
	rep := run(t, sim.Scenario{
		Name: "relay-crash", Seed: testSeed(t, 41),
		Zones:  threeZones(3),
		Intra:  sim.Link{Latency: 200 * time.Microsecond},
		Inter:  sim.Link{Latency: 2 * time.Millisecond},
		Fanout: mesh.FanoutRelay,
		Publish: []sim.Publisher{
			{Rate: 20, Mode: sim.Zones, Need: 3, Zones: []string{"a"}, Timeout: 3 * time.Second},
		},
		Faults:   []sim.Fault{{Kind: sim.FaultCrashRelay, Zones: []string{"b"}, At: time.Second}},
		Duration: 4 * time.Second,
	})
	if len(rep.Faults) != 1 || rep.Faults[0].Kind != string(sim.FaultCrashRelay) {
		t.Fatalf("no relay crashed: faults %+v", rep.Faults)
	}
	if len(rep.Acks) != 1 || rep.Acks[0].OK == 0 {
		t.Fatalf("no awaited publish succeeded: %+v", rep.Acks)
	}
	for reason := range rep.FailedAwaits {
		if reason != "deadline" && reason != "fail-fast" {
			t.Errorf("awaited publishes failed with %q errors, not the typed quorum error", reason)
		}
	}
	if rep.FalseAcks != 0 {
		t.Errorf("%d acknowledgements from nodes that never delivered the event", rep.FalseAcks)
	}
	if s := silentNodes(rep); len(s) > 0 {
		t.Errorf("events lost without a resync on %v", s)
	}
}

// TestRollingRestart: while every node restarts in turn with a new
// incarnation, every subscription receives every event published while it
// runs, or a resync.
func TestRollingRestart(t *testing.T) {
	if warptest.RaceEnabled {
		t.Skip("half a minute under the race detector; TestChaosSim restarts nodes one after another under it")
	}
	perZone, duration := 2, 15*time.Second
	rep := run(t, sim.Scenario{
		Name: "rolling-restart", Seed: testSeed(t, 51),
		Zones:   threeZones(perZone),
		Intra:   sim.Link{Latency: 200 * time.Microsecond},
		Inter:   sim.Link{Latency: 2 * time.Millisecond},
		Profile: "local",
		Publish: []sim.Publisher{{Rate: 20}},
		Faults:  []sim.Fault{{Kind: sim.FaultRollingRestart, At: 500 * time.Millisecond}},
		// Each restart is a graceful leave and a rejoin of about a
		// second; the rolling restart ends before publishing does.
		Duration: duration,
	})
	if len(rep.Faults) != 1 || rep.Faults[0].ToMs >= rep.DurationMs {
		t.Errorf("the rolling restart did not finish while publishing: %+v", rep.Faults)
	}
	if rep.Delivery.Expected == 0 {
		t.Fatal("nothing expected")
	}
	if s := silentNodes(rep); len(s) > 0 {
		t.Errorf("events lost without a resync on %v", s)
	}
}

// TestRelayOneDatagramPerRemoteZone: in relay mode on perfect links, each
// event crosses to each remote zone in exactly one data datagram.
func TestRelayOneDatagramPerRemoteZone(t *testing.T) {
	c := startCluster(t, sim.ClusterConfig{
		Seed:   testSeed(t, 61),
		Intra:  sim.Link{Latency: 200 * time.Microsecond},
		Inter:  sim.Link{Latency: 2 * time.Millisecond},
		Fanout: mesh.FanoutRelay,
	}, threeZones(4))
	var subs []<-chan syncbus.Event
	for _, b := range c.Buses() {
		ch, err := b.SubscribePrefix(context.Background(), "r/")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, ch)
	}
	pub := c.NodeNamed("a-2").Bus()
	before := c.Network().Stats()
	const events = 20
	for i := range events {
		key := fmt.Sprintf("r/%d", i)
		if err := pub.Publish(context.Background(), key); err != nil {
			t.Fatal(err)
		}
		// One event at a time: none shares a datagram with another.
		for j, ch := range subs {
			select {
			case ev := <-ch:
				if ev.Key != key {
					t.Fatalf("node %d got %s (op %v), want %s", j, ev.Key, ev.Op, key)
				}
			case <-time.After(c.Network().Wall(5 * time.Second)):
				t.Fatalf("node %d did not get %s", j, key)
			}
		}
	}
	st := c.Network().Stats().Sub(before)
	if got, want := st.Events.Across.Datagrams, uint64(events*2); got != want {
		t.Errorf("%d events datagrams crossed zones for %d events and 2 remote zones, want %d", got, events, want)
	}
	if got, want := st.Events.Within.Datagrams, uint64(events*(3+2*3)); got != want {
		t.Errorf("%d events datagrams within zones, want %d (3 in the publisher's zone, 3 per relay)", got, want)
	}
	if st.Retransmits.Total().Datagrams != 0 || st.Drops.Total() != 0 {
		t.Errorf("retransmissions %+v, drops %+v on perfect links", st.Retransmits, st.Drops)
	}
	if !slices.Contains(c.Network().Zones(), "c") {
		t.Error("zone c missing")
	}
}
