package zones_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
	"github.com/warpmesh/warp/zones/zonestest"
)

// avoidSet returns an avoid function marking names.
func avoidSet(names ...string) func(string) bool {
	if len(names) == 0 {
		return nil
	}
	return func(n string) bool { return slices.Contains(names, n) }
}

// relaysByZone splits a plan into its direct targets and its relays by zone,
// failing t on a zone with two relays.
func relaysByZone(t *testing.T, plan []zones.Target) (direct []string, relays map[string]string) {
	t.Helper()
	relays = make(map[string]string)
	for _, tg := range plan {
		if !tg.Relay {
			direct = append(direct, tg.Node)
			continue
		}
		if prev, dup := relays[tg.Zone]; dup {
			t.Fatalf("zone %q has two relays: %s and %s", tg.Zone, prev, tg.Node)
		}
		relays[tg.Zone] = tg.Node
	}
	return direct, relays
}

func TestPlanTable(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		local  string
		mode   zones.Mode
		avoid  []string
		direct []string // exact, in order
		// relays lists, per remote zone, the nodes that may be its relay;
		// a single entry means the relay is determined.
		relays map[string][]string
	}{
		{
			name:   "direct: every other alive node, own zone first",
			spec:   "b:n3,n4 a:n1,n2 c:n5",
			local:  "n3",
			mode:   zones.ModeDirect,
			direct: []string{"n4", "n1", "n2", "n5"},
		},
		{
			name:   "relay: own zone direct, one relay per remote zone",
			spec:   "a:n1,n2 b:n3,n4 c:n5",
			local:  "n1",
			mode:   zones.ModeRelay,
			direct: []string{"n2"},
			relays: map[string][]string{"b": {"n3", "n4"}, "c": {"n5"}},
		},
		{
			name:   "relay: remote empty zone is a zone",
			spec:   ":n1,n2 a:n3",
			local:  "n3",
			mode:   zones.ModeRelay,
			relays: map[string][]string{"": {"n1", "n2"}},
		},
		{
			name:   "relay: publisher in the empty zone",
			spec:   ":n1,n2 a:n3",
			local:  "n1",
			mode:   zones.ModeRelay,
			direct: []string{"n2"},
			relays: map[string][]string{"a": {"n3"}},
		},
		{
			name:   "direct: empty zone",
			spec:   ":n1,n2 a:n3",
			local:  "n3",
			mode:   zones.ModeDirect,
			direct: []string{"n1", "n2"},
		},
		{
			name:   "relay: single-node zones",
			spec:   "a:n1 b:n2 c:n3 d:n4",
			local:  "n1",
			mode:   zones.ModeRelay,
			relays: map[string][]string{"b": {"n2"}, "c": {"n3"}, "d": {"n4"}},
		},
		{
			name:   "relay: publisher alone in its zone",
			spec:   "a:n1 b:n2,n3,n4",
			local:  "n1",
			mode:   zones.ModeRelay,
			relays: map[string][]string{"b": {"n2", "n3", "n4"}},
		},
		{
			name:   "relay: an avoided relay is replaced",
			spec:   "a:n1 b:n2,n3",
			local:  "n1",
			mode:   zones.ModeRelay,
			avoid:  []string{"n2"},
			relays: map[string][]string{"b": {"n3"}},
		},
		{
			name:   "relay: all relays avoided still gives one per zone",
			spec:   "a:n1 b:n2,n3 c:n4",
			local:  "n1",
			mode:   zones.ModeRelay,
			avoid:  []string{"n2", "n3", "n4"},
			relays: map[string][]string{"b": {"n2", "n3"}, "c": {"n4"}},
		},
		{
			name:   "relay: avoid never drops a node of the own zone",
			spec:   "a:n1,n2,n3 b:n4",
			local:  "n1",
			mode:   zones.ModeRelay,
			avoid:  []string{"n2", "n3"},
			direct: []string{"n2", "n3"},
			relays: map[string][]string{"b": {"n4"}},
		},
		{
			name:   "direct: avoid is ignored",
			spec:   "a:n1,n2 b:n3",
			local:  "n1",
			mode:   zones.ModeDirect,
			avoid:  []string{"n2", "n3"},
			direct: []string{"n2", "n3"},
		},
		{
			name:   "relay: a suspect node is a relay only when no other is",
			spec:   "a:n1 b:n2/suspect,n3 c:n4/suspect",
			local:  "n1",
			mode:   zones.ModeRelay,
			relays: map[string][]string{"b": {"n3"}, "c": {"n4"}},
		},
		{
			name:   "relay: a suspect node beats an avoided one",
			spec:   "a:n1 b:n2/suspect,n3",
			local:  "n1",
			mode:   zones.ModeRelay,
			avoid:  []string{"n3"},
			relays: map[string][]string{"b": {"n2"}},
		},
		{
			name:   "direct: suspect nodes are targets",
			spec:   "a:n1,n2/suspect b:n3/suspect",
			local:  "n1",
			mode:   zones.ModeDirect,
			direct: []string{"n2", "n3"},
		},
		{
			name:   "relay: left and failed nodes are excluded",
			spec:   "a:n1,n2/left b:n3/failed,n4,n5/left c:n6/failed",
			local:  "n1",
			mode:   zones.ModeRelay,
			relays: map[string][]string{"b": {"n4"}},
		},
		{
			name:   "direct: left and failed nodes are excluded",
			spec:   "a:n1,n2/left b:n3/failed,n4 c:n6/failed",
			local:  "n1",
			mode:   zones.ModeDirect,
			direct: []string{"n4"},
		},
		{
			name:   "publisher listed as failed still publishes",
			spec:   "a:n1/failed,n2 b:n3",
			local:  "n1",
			mode:   zones.ModeRelay,
			direct: []string{"n2"},
			relays: map[string][]string{"b": {"n3"}},
		},
		{
			name:  "single node: nothing to send",
			spec:  "a:n1",
			local: "n1",
			mode:  zones.ModeRelay,
		},
		{
			name:   "unknown mode plans like direct",
			spec:   "a:n1 b:n2,n3",
			local:  "n1",
			mode:   zones.Mode(9),
			direct: []string{"n2", "n3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := topology(t, tc.local, tc.spec)
			for spread := range uint64(64) {
				plan := topo.Plan(tc.mode, spread, avoidSet(tc.avoid...))
				direct, relays := relaysByZone(t, plan)
				if !slices.Equal(direct, tc.direct) {
					t.Fatalf("spread %d: direct = %q, want %q", spread, direct, tc.direct)
				}
				if len(relays) != len(tc.relays) {
					t.Fatalf("spread %d: relays %v, want one in each of %v", spread, relays, tc.relays)
				}
				for zone, allowed := range tc.relays {
					if r, ok := relays[zone]; !ok || !slices.Contains(allowed, r) {
						t.Fatalf("spread %d: relay of zone %q = %q, want one of %q", spread, zone, r, allowed)
					}
				}
				for _, tg := range plan {
					if z, _ := topo.ZoneOf(tg.Node); z != tg.Zone {
						t.Fatalf("target %s has zone %q, topology says %q", tg.Node, tg.Zone, z)
					}
				}
			}
		})
	}
}

func TestPlanCarriesAddresses(t *testing.T) {
	members := []syncbus.Member{
		{Name: "n1", Zone: "a", Addr: "10.0.0.1:7946"},
		{Name: "n2", Zone: "a", Addr: "10.0.0.2:7946"},
		{Name: "n3", Zone: "b", Addr: "10.0.1.3:7946"},
	}
	topo, err := zones.New("n1", members)
	if err != nil {
		t.Fatal(err)
	}
	want := []zones.Target{
		{Node: "n2", Zone: "a", Addr: "10.0.0.2:7946"},
		{Node: "n3", Zone: "b", Addr: "10.0.1.3:7946", Relay: true},
	}
	if got := topo.Plan(zones.ModeRelay, 0, nil); !slices.Equal(got, want) {
		t.Errorf("Plan = %+v, want %+v", got, want)
	}
}

// TestRelayLoadSpreads checks that different spreads put the relay load on
// every node of a zone, roughly evenly: the spreads are fixed, so the
// outcome is deterministic.
func TestRelayLoadSpreads(t *testing.T) {
	topo := topology(t, "n0", "a:n0 b:n1,n2,n3,n4")
	counts := make(map[string]int)
	const events = 4000
	for i := range uint64(events) {
		var id syncbus.EventID
		id[7], id[15] = 0x42, byte(i)
		id[14] = byte(i >> 8)
		tg, ok := topo.PickRelay("b", zones.Spread(id), nil)
		if !ok {
			t.Fatal("no relay for zone b")
		}
		counts[tg.Node]++
	}
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		// Expected 1000 each; 800 is more than six standard deviations off
		// for a fair choice, so only a skewed picker falls below it.
		if counts[n] < 800 {
			t.Errorf("relay counts %v: %s chosen only %d times of %d", counts, n, counts[n], events)
		}
	}
}

// TestRetransmissionPrefersAnotherRelay plans an event, then plans its
// retransmission avoiding the first relays: every zone with another alive
// node gets a different relay, and PickRelay agrees with Plan.
func TestRetransmissionPrefersAnotherRelay(t *testing.T) {
	topo := topology(t, "n00", "a:n00,n01 b:n02,n03,n04 c:n05,n06 d:n07")
	for spread := range uint64(200) {
		first := topo.Plan(zones.ModeRelay, spread, nil)
		_, relays := relaysByZone(t, first)
		var silent []string
		for _, r := range relays {
			silent = append(silent, r)
		}
		retry := topo.Plan(zones.ModeRelay, spread, avoidSet(silent...))
		_, again := relaysByZone(t, retry)
		for zone, r := range relays {
			switch {
			case topo.AliveCount(zone) > 1 && again[zone] == r:
				t.Fatalf("spread %d: zone %s kept its silent relay %s", spread, zone, r)
			case topo.AliveCount(zone) == 1 && again[zone] != r:
				t.Fatalf("spread %d: zone %s lost its only node %s", spread, zone, r)
			}
			tg, ok := topo.PickRelay(zone, spread, avoidSet(silent...))
			if !ok || tg.Node != again[zone] || !tg.Relay || tg.Zone != zone {
				t.Fatalf("spread %d: PickRelay(%s) = %+v, %v; Plan chose %s", spread, zone, tg, ok, again[zone])
			}
		}
	}
}

func TestPickRelay(t *testing.T) {
	topo := topology(t, "n1", "a:n1,n2/suspect b:n3/failed")
	if _, ok := topo.PickRelay("nowhere", 0, nil); ok {
		t.Errorf("PickRelay found a relay in an unknown zone")
	}
	if _, ok := topo.PickRelay("b", 0, nil); ok {
		t.Errorf("PickRelay found a relay in a zone without alive nodes")
	}
	// In the local zone the local node is never its own relay.
	for spread := range uint64(32) {
		tg, ok := topo.PickRelay("a", spread, avoidSet("n2"))
		if !ok || tg.Node != "n2" {
			t.Fatalf("PickRelay(a) = %+v, %v; want n2", tg, ok)
		}
	}
	alone := topology(t, "n1", "a:n1 b:n2")
	if _, ok := alone.PickRelay("a", 0, nil); ok {
		t.Errorf("PickRelay chose the local node as a relay")
	}
}

// TestPlanIgnoresMemberOrder builds the same cluster from shuffled member
// lists: the plan depends on the membership, not on its order.
func TestPlanIgnoresMemberOrder(t *testing.T) {
	members := zonestest.Members(t, "a:n1,n2,n3 b:n4,n5/suspect,n6 c:n7,n8/left :n9")
	ref, err := zones.New("n2", members)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		topo, err := zones.New("n2", shuffled)
		if err != nil {
			t.Fatal(err)
		}
		for spread := range uint64(16) {
			for _, mode := range []zones.Mode{zones.ModeDirect, zones.ModeRelay} {
				if got, want := topo.Plan(mode, spread, avoidSet("n4")), ref.Plan(mode, spread, avoidSet("n4")); !slices.Equal(got, want) {
					t.Fatalf("order %s: plan %v, want %v", zonestest.Format(shuffled), got, want)
				}
			}
		}
	}
}

func TestAppendPlanReusesBuffer(t *testing.T) {
	topo := topology(t, "n0", "a:n0,n1 b:n2,n3 c:n4")
	buf := make([]zones.Target, 0, 16)
	for spread := range uint64(8) {
		for _, mode := range []zones.Mode{zones.ModeDirect, zones.ModeRelay} {
			got := topo.AppendPlan(buf[:0], mode, spread, nil)
			if want := topo.Plan(mode, spread, nil); !slices.Equal(got, want) {
				t.Fatalf("AppendPlan = %v, Plan = %v", got, want)
			}
			if &got[0] != &buf[:1][0] {
				t.Fatalf("AppendPlan did not reuse the buffer")
			}
		}
	}
}

func TestModeAndResultStrings(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{zones.ModeDirect, "ModeDirect"},
		{zones.ModeRelay, "ModeRelay"},
		{zones.Mode(9), "Mode(9)"},
		{zones.Pending, "Pending"},
		{zones.Satisfied, "Satisfied"},
		{zones.Impossible, "Impossible"},
		{zones.Result(7), "Result(7)"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestSpreadDependsOnEveryByte(t *testing.T) {
	var base syncbus.EventID
	s0 := zones.Spread(base)
	for i := range len(base) {
		id := base
		id[i] = 1
		if zones.Spread(id) == s0 {
			t.Errorf("Spread ignores byte %d of the ID", i)
		}
	}
}
