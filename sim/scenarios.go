package sim

import (
	"slices"
	"time"

	"github.com/warpmesh/warp/mesh"
)

// threeZoneLinks are the links between zones a, b and c: 1ms between a
// and b, 30ms between a and c, 80ms between b and c (one way).
func threeZoneLinks() []ZoneLink {
	return []ZoneLink{
		{A: "a", B: "b", Link: Link{Latency: time.Millisecond, Jitter: 200 * time.Microsecond}},
		{A: "a", B: "c", Link: Link{Latency: 30 * time.Millisecond, Jitter: 2 * time.Millisecond}},
		{A: "b", B: "c", Link: Link{Latency: 80 * time.Millisecond, Jitter: 5 * time.Millisecond}},
	}
}

func zonesOf(size int, names ...string) []ZoneSpec {
	out := make([]ZoneSpec, len(names))
	for i, n := range names {
		out[i] = ZoneSpec{Name: n, Nodes: size}
	}
	return out
}

var intraZone = Link{Latency: 200 * time.Microsecond, Jitter: 50 * time.Microsecond}

// Scenarios returns the ready-made scenarios, by name: "three-zones",
// "loss", "partition", "relay-crash", "rolling-restart", "paused-node"
// and "large". Each call returns fresh values, free to change.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name:        "three-zones",
			Description: "15 nodes in three zones 1, 30 and 80 ms apart (relay fanout); eventual and awaited publishes",
			Seed:        1,
			Zones:       zonesOf(5, "a", "b", "c"),
			Intra:       intraZone,
			Links:       threeZoneLinks(),
			Publish: []Publisher{
				{Rate: 50, Mode: Eventual},
				{Rate: 5, Mode: Replicas, Need: 3},
				{Rate: 5, Mode: Zones, Need: 2},
				{Rate: 5, Mode: Zones, Need: 3},
			},
			Duration: 10 * time.Second,
		},
		{
			Name:        "loss",
			Description: "9 nodes in three zones, 5% of datagrams lost on every link; repair and resyncs at work",
			Seed:        1,
			Zones:       zonesOf(3, "a", "b", "c"),
			Intra:       Link{Latency: 200 * time.Microsecond, Loss: 0.05},
			Inter:       Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond, Loss: 0.05},
			Publish: []Publisher{
				{Rate: 100, Mode: Eventual},
				{Rate: 5, Mode: Zones, Need: 3},
			},
			Duration: 10 * time.Second,
		},
		{
			Name:        "partition",
			Description: "9 nodes in three zones; zone c is cut off for 10s and healed; awaits for 2 and 3 zones",
			Seed:        1,
			// The local profile rejoins failed members every 15s, so the
			// halves merge within 15s of the heal (lan: 30s).
			Profile: "local",
			Zones:   zonesOf(3, "a", "b", "c"),
			Intra:   intraZone,
			Inter:   Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond},
			Publish: []Publisher{
				{Rate: 20, Mode: Eventual},
				{Rate: 2, Mode: Zones, Need: 2, Zones: []string{"a", "b"}},
				{Rate: 2, Mode: Zones, Need: 3, Zones: []string{"a", "b"}},
			},
			Faults:   []Fault{{Kind: FaultPartition, Zones: []string{"c"}, At: 3 * time.Second, For: 10 * time.Second}},
			Duration: 30 * time.Second,
			Settle:   20 * time.Second,
		},
		{
			Name:        "relay-crash",
			Description: "12 nodes in three zones (relay fanout); the relay of zone b crashes while it holds an awaited event",
			Seed:        1,
			Zones:       zonesOf(4, "a", "b", "c"),
			Intra:       intraZone,
			Inter:       Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond},
			Fanout:      mesh.FanoutRelay,
			Publish: []Publisher{
				{Rate: 20, Mode: Zones, Need: 3, Zones: []string{"a"}},
				{Rate: 20, Mode: Eventual, Zones: []string{"a"}},
			},
			Faults:   []Fault{{Kind: FaultCrashRelay, Zones: []string{"b"}, At: 3 * time.Second}},
			Duration: 10 * time.Second,
		},
		{
			Name:        "rolling-restart",
			Description: "6 nodes in three zones, each restarted in turn with a new incarnation while events flow",
			Seed:        1,
			Zones:       zonesOf(2, "a", "b", "c"),
			Intra:       intraZone,
			Inter:       Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond},
			Publish: []Publisher{
				{Rate: 20, Mode: Eventual},
				{Rate: 2, Mode: Zones, Need: 2},
			},
			Faults:   []Fault{{Kind: FaultRollingRestart, At: 2 * time.Second, Every: time.Second}},
			Duration: 20 * time.Second,
		},
		{
			Name:        "paused-node",
			Description: "9 nodes in three zones; node b-1 is paused (SIGSTOP) for 8s while events flow, then resumes",
			Seed:        1,
			Zones:       zonesOf(3, "a", "b", "c"),
			Intra:       intraZone,
			Inter:       Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond},
			Publish: []Publisher{
				{Rate: 50, Mode: Eventual},
				{Rate: 2, Mode: Replicas, Need: 2},
			},
			Faults:   []Fault{{Kind: FaultPause, Nodes: []string{"b-1"}, At: 2 * time.Second, For: 8 * time.Second}},
			Duration: 14 * time.Second,
		},
		Large(),
	}
}

// Large is the 1000-node scenario: five zones of 200 nodes, relay fanout
// (the default at that size), eventual and awaited publishes.
func Large() Scenario {
	return LargeOf(200)
}

// LargeOf is Large with perZone nodes in each of its five zones (its
// smaller twins run in the test suite).
func LargeOf(perZone int) Scenario {
	return Scenario{
		Name:        "large",
		Description: "5 zones of 200 nodes (1000 in all), 1–5 ms apart; eventual and awaited publishes",
		Seed:        1,
		Zones:       zonesOf(perZone, "a", "b", "c", "d", "e"),
		Intra:       intraZone,
		Inter:       Link{Latency: 2 * time.Millisecond, Jitter: 500 * time.Microsecond},
		Links: []ZoneLink{
			{A: "a", B: "e", Link: Link{Latency: 5 * time.Millisecond, Jitter: time.Millisecond}},
			{A: "b", B: "e", Link: Link{Latency: 4 * time.Millisecond, Jitter: time.Millisecond}},
			{A: "a", B: "b", Link: Link{Latency: time.Millisecond, Jitter: 200 * time.Microsecond}},
		},
		Publish: []Publisher{
			{Rate: 20, Mode: Eventual},
			{Rate: 2, Mode: Replicas, Need: 3},
			{Rate: 2, Mode: Zones, Need: 3},
			{Rate: 2, Mode: Zones, Need: 5},
		},
		Duration: 3 * time.Second,
	}
}

// ScenarioNamed returns the ready-made scenario named name.
func ScenarioNamed(name string) (Scenario, bool) {
	all := Scenarios()
	i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		return Scenario{}, false
	}
	return all[i], true
}
