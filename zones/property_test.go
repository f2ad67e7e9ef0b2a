package zones_test

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// The property tests draw clusters from a small universe of nodes, each
// with a fixed zone, so that a naive model can enumerate every subset of
// acknowledgements.
var universe = []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"}

var allStates = []syncbus.MemberState{
	syncbus.MemberAlive, syncbus.MemberAlive, syncbus.MemberSuspect, syncbus.MemberLeft, syncbus.MemberFailed,
}

// drawZones assigns each node of the universe a zone and picks the local
// node.
func drawZones(t *rapid.T) (zoneOf map[string]string, local string) {
	zoneNames := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"", "a", "b", "c"}), 1, 4, rapid.ID).Draw(t, "zones")
	zoneOf = make(map[string]string, len(universe))
	for _, n := range universe {
		zoneOf[n] = rapid.SampledFrom(zoneNames).Draw(t, "zone of "+n)
	}
	return zoneOf, rapid.SampledFrom(universe).Draw(t, "local")
}

// drawMembers draws a member list: the local node always, every other node
// of the universe maybe, each in some state.
func drawMembers(t *rapid.T, zoneOf map[string]string, local string) []syncbus.Member {
	var ms []syncbus.Member
	for _, n := range universe {
		if n != local && !rapid.Bool().Draw(t, "list "+n) {
			continue
		}
		st := rapid.SampledFrom(allStates).Draw(t, "state of "+n)
		ms = append(ms, syncbus.Member{Name: n, Zone: zoneOf[n], State: st, Addr: n + ":7946"})
	}
	return rapid.Permutation(ms).Draw(t, "member order")
}

// naiveAlive is the liveness rule written out: alive or suspect, and the
// local node always.
func naiveAlive(ms []syncbus.Member, local, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return name == local || m.State == syncbus.MemberAlive || m.State == syncbus.MemberSuspect
		}
	}
	return false
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		zoneOf, local := drawZones(t)
		members := drawMembers(t, zoneOf, local)
		topo, err := zones.New(local, members)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		mode := rapid.SampledFrom([]zones.Mode{zones.ModeDirect, zones.ModeRelay}).Draw(t, "mode")
		spread := rapid.Uint64().Draw(t, "spread")
		avoided := rapid.SliceOfDistinct(rapid.SampledFrom(universe), rapid.ID).Draw(t, "avoided")
		avoid := func(n string) bool { return slices.Contains(avoided, n) }
		plan := topo.Plan(mode, spread, avoid)

		isSuspect := func(n string) bool {
			for _, m := range members {
				if m.Name == n {
					return n != local && m.State == syncbus.MemberSuspect
				}
			}
			return false
		}
		rank := func(n string) int {
			r := 0
			if isSuspect(n) {
				r++
			}
			if avoid(n) {
				r += 2
			}
			return r
		}

		covered := make(map[string]int)
		relays := make(map[string]string)
		for _, tg := range plan {
			if tg.Node == local {
				t.Fatalf("the publisher targets itself: %+v", tg)
			}
			if !naiveAlive(members, local, tg.Node) {
				t.Fatalf("target %s is not alive", tg.Node)
			}
			if tg.Zone != zoneOf[tg.Node] || tg.Addr != tg.Node+":7946" {
				t.Fatalf("target %+v has the wrong zone or address", tg)
			}
			covered[tg.Node]++
			if !tg.Relay {
				if mode == zones.ModeRelay && tg.Zone != zoneOf[local] {
					t.Fatalf("relay mode sends directly to %s in remote zone %q", tg.Node, tg.Zone)
				}
				continue
			}
			if mode != zones.ModeRelay {
				t.Fatalf("direct mode has a relay: %+v", tg)
			}
			if tg.Zone == zoneOf[local] {
				t.Fatalf("relay %s in the publisher's own zone", tg.Node)
			}
			if prev, dup := relays[tg.Zone]; dup {
				t.Fatalf("zone %q has relays %s and %s", tg.Zone, prev, tg.Node)
			}
			relays[tg.Zone] = tg.Node
			// The relay is one of the best-ranked alive nodes of its zone.
			for _, m := range members {
				if m.Zone == tg.Zone && naiveAlive(members, local, m.Name) && rank(m.Name) < rank(tg.Node) {
					t.Fatalf("relay %s (rank %d) chosen over %s (rank %d)", tg.Node, rank(tg.Node), m.Name, rank(m.Name))
				}
			}
			// The relay fans out on its own view of the same members.
			relayTopo, err := zones.New(tg.Node, members)
			if err != nil {
				t.Fatalf("relay topology: %v", err)
			}
			for _, p := range relayTopo.ZonePeers(relayTopo.LocalZone(), relayTopo.Local(), local) {
				covered[p]++
			}
			if got, ok := topo.PickRelay(tg.Zone, spread, avoid); !ok || got != tg {
				t.Fatalf("PickRelay(%q) = %+v, %v; Plan chose %+v", tg.Zone, got, ok, tg)
			}
		}
		// Every alive node other than the publisher exactly once, nothing else.
		for _, n := range universe {
			want := 0
			if n != local && naiveAlive(members, local, n) {
				want = 1
			}
			if covered[n] != want {
				t.Fatalf("node %s covered %d times, want %d (plan %+v)", n, covered[n], want, plan)
			}
		}
		// One relay for every remote zone with an alive node.
		if mode == zones.ModeRelay {
			for _, m := range members {
				if m.Zone != zoneOf[local] && naiveAlive(members, local, m.Name) && relays[m.Zone] == "" {
					t.Fatalf("zone %q has alive node %s but no relay", m.Zone, m.Name)
				}
			}
		}
		// The same inputs give the same plan, whatever the member order.
		again, err := zones.New(local, rapid.Permutation(members).Draw(t, "reordered"))
		if err != nil {
			t.Fatal(err)
		}
		if got := again.Plan(mode, spread, avoid); !slices.Equal(got, plan) {
			t.Fatalf("plan %+v differs from %+v for the same members", got, plan)
		}
	})
}

// model is a naive tracker: a set of acknowledged names checked against
// the requirement by counting from scratch.
type model struct {
	local   string
	zoneOf  map[string]string
	members []syncbus.Member
	acked   map[string]bool
	zonesRq bool
	count   int // as drawn; <= 0 means 1
	quorum  int // as drawn; <= 0 means 1
}

func (m *model) alive(n string) bool { return naiveAlive(m.members, m.local, n) }

func (m *model) ack(n string) bool {
	if n == m.local || !m.alive(n) || m.acked[n] {
		return false
	}
	m.acked[n] = true
	return true
}

// candidates are the alive nodes that could still acknowledge.
func (m *model) candidates() []string {
	var out []string
	for _, n := range universe {
		if n != m.local && m.alive(n) && !m.acked[n] {
			out = append(out, n)
		}
	}
	return out
}

// countingZones lists, sorted, the zones that count when the nodes in acked
// have applied the event.
func (m *model) countingZones(acked map[string]bool) []string {
	known := make(map[string]bool)
	for _, mb := range m.members {
		known[mb.Zone] = true
	}
	for n := range acked {
		known[m.zoneOf[n]] = true
	}
	var out []string
	for z := range known {
		applied, alive := 0, 0
		for n := range acked {
			if m.zoneOf[n] == z {
				applied++
			}
		}
		if z == m.zoneOf[m.local] {
			applied++
		}
		for _, mb := range m.members {
			if mb.Zone == z && m.alive(mb.Name) {
				alive++
			}
		}
		need := max(1, min(max(m.quorum, 1), alive))
		if applied >= need {
			out = append(out, z)
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) satisfied(acked map[string]bool) bool {
	if m.zonesRq {
		return len(m.countingZones(acked)) >= max(m.count, 1)
	}
	return len(acked) >= max(m.count, 1)
}

// result decides by brute force: Pending iff some subset of the candidates
// acknowledging would satisfy the requirement.
func (m *model) result() zones.Result {
	if m.satisfied(m.acked) {
		return zones.Satisfied
	}
	cands := m.candidates()
	for mask := 1; mask < 1<<len(cands); mask++ {
		set := make(map[string]bool, len(m.acked)+len(cands))
		for n := range m.acked {
			set[n] = true
		}
		for i, n := range cands {
			if mask&(1<<i) != 0 {
				set[n] = true
			}
		}
		if m.satisfied(set) {
			return zones.Pending
		}
	}
	return zones.Impossible
}

func (m *model) available() int {
	all := make(map[string]bool)
	for n := range m.acked {
		all[n] = true
	}
	for _, n := range m.candidates() {
		all[n] = true
	}
	if m.zonesRq {
		return len(m.countingZones(all))
	}
	return len(all)
}

func (m *model) ackedNodes() []string {
	var out []string
	for n := range m.acked {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (m *model) ackedZones() []string {
	if m.zonesRq {
		return m.countingZones(m.acked)
	}
	var out []string
	for n := range m.acked {
		if !slices.Contains(out, m.zoneOf[n]) {
			out = append(out, m.zoneOf[n])
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) check(t *rapid.T, tr *zones.Tracker, when string) {
	if got, want := tr.Result(), m.result(); got != want {
		t.Fatalf("%s: Result = %v, naive %v (acked %v, members %+v)", when, got, want, m.ackedNodes(), m.members)
	}
	if got, want := tr.AckedNodes(), m.ackedNodes(); !slices.Equal(got, want) {
		t.Fatalf("%s: AckedNodes = %q, naive %q", when, got, want)
	}
	if got, want := tr.Acked(), len(m.acked); got != want {
		t.Fatalf("%s: Acked = %d, naive %d", when, got, want)
	}
	if got, want := tr.AckedZones(), m.ackedZones(); !slices.Equal(got, want) {
		t.Fatalf("%s: AckedZones = %q, naive %q", when, got, want)
	}
	if got, want := tr.Available(), m.available(); got != want {
		t.Fatalf("%s: Available = %d, naive %d", when, got, want)
	}
	if got, want := tr.Unacked(), m.candidates(); !slices.Equal(got, want) {
		t.Fatalf("%s: Unacked = %q, naive %q", when, got, want)
	}
}

func TestTrackerMatchesNaiveModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		zoneOf, local := drawZones(t)
		m := &model{
			local:   local,
			zoneOf:  zoneOf,
			members: drawMembers(t, zoneOf, local),
			acked:   make(map[string]bool),
			zonesRq: rapid.Bool().Draw(t, "zones requirement"),
			count:   rapid.IntRange(-1, 6).Draw(t, "count"),
			quorum:  rapid.IntRange(-1, 5).Draw(t, "quorum"),
		}
		req := zones.Replicas(m.count)
		if m.zonesRq {
			req = zones.Zones(m.count).WithZoneQuorum(m.quorum)
		} else {
			m.quorum = 1 // a replicas requirement has no zone quorum
		}
		topo, err := zones.New(local, m.members)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		tr := zones.NewTracker(topo, req)
		// The fail-fast check agrees with a fresh tracker and with the model.
		ok, available := zones.Feasible(topo, req)
		if ok != (m.result() != zones.Impossible) || available != m.available() {
			t.Fatalf("Feasible = %v, %d; naive %v, %d", ok, available, m.result(), m.available())
		}
		m.check(t, tr, "start")

		ackable := append(slices.Clone(universe), "ghost")
		steps := rapid.IntRange(0, 25).Draw(t, "steps")
		for i := range steps {
			if rapid.IntRange(0, 4).Draw(t, "membership changes") == 0 {
				m.members = drawMembers(t, zoneOf, local)
				next, err := zones.New(local, m.members)
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := tr.SetTopology(next); err != nil {
					t.Fatalf("SetTopology: %v", err)
				}
				m.check(t, tr, "after SetTopology")
				continue
			}
			name := rapid.SampledFrom(ackable).Draw(t, "ack")
			if got, want := tr.Ack(name), m.ack(name); got != want {
				t.Fatalf("step %d: Ack(%q) = %v, naive %v", i, name, got, want)
			}
			m.check(t, tr, "after Ack("+name+")")
		}
	})
}
