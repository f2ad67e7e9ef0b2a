package zones_test

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
	"github.com/warpmesh/warp/zones/zonestest"
)

func TestNewRejectsBadMembers(t *testing.T) {
	tests := []struct {
		name      string
		local     string
		members   []syncbus.Member
		want      error
		wantIndex int
		wantName  string
	}{
		{
			name:    "local missing",
			local:   "n9",
			members: []syncbus.Member{{Name: "n1"}, {Name: "n2"}},
			want:    zones.ErrNoLocal,
		},
		{
			name:    "no members",
			local:   "n1",
			members: nil,
			want:    zones.ErrNoLocal,
		},
		{
			name:      "empty name",
			local:     "n1",
			members:   []syncbus.Member{{Name: "n1"}, {Name: ""}},
			want:      zones.ErrEmptyName,
			wantIndex: 1,
		},
		{
			name:      "duplicate name",
			local:     "n1",
			members:   []syncbus.Member{{Name: "n1"}, {Name: "n2", Zone: "a"}, {Name: "n2", Zone: "b"}},
			want:      zones.ErrDuplicateName,
			wantIndex: 2,
			wantName:  "n2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := zones.New(tc.local, tc.members)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: err = %v, want %v", err, tc.want)
			}
			if topo != nil {
				t.Errorf("New returned a topology with an error")
			}
			if tc.want == zones.ErrNoLocal {
				return
			}
			var me *zones.MemberError
			if !errors.As(err, &me) {
				t.Fatalf("New: err %T is not a *MemberError", err)
			}
			if me.Index != tc.wantIndex || me.Name != tc.wantName {
				t.Errorf("MemberError = {Index %d, Name %q}, want {%d, %q}", me.Index, me.Name, tc.wantIndex, tc.wantName)
			}
			if me.Error() == "" {
				t.Errorf("MemberError has an empty message")
			}
		})
	}
}

func TestTopologyQueries(t *testing.T) {
	members := []syncbus.Member{
		{Name: "n5", Zone: "b", Addr: "10.0.0.5:7946", Region: "eu"},
		{Name: "n1", Zone: "a", Addr: "10.0.0.1:7946", Region: "eu"},
		{Name: "n3", Zone: "a", State: syncbus.MemberSuspect},
		{Name: "n2", Zone: "a", State: syncbus.MemberLeft},
		{Name: "n4", Zone: "b", State: syncbus.MemberFailed},
		{Name: "n6", Zone: "", State: syncbus.MemberAlive},
		{Name: "n7", Zone: "c", State: syncbus.MemberFailed},
	}
	topo, err := zones.New("n1", members)
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Local(); got != "n1" {
		t.Errorf("Local = %q, want n1", got)
	}
	if got := topo.LocalZone(); got != "a" {
		t.Errorf("LocalZone = %q, want a", got)
	}
	// n1, n3 (suspect), n5, n6 are alive; n2 left, n4 and n7 failed.
	if got := topo.Size(); got != 4 {
		t.Errorf("Size = %d, want 4", got)
	}
	// Zone c has only a failed node, so it is not among the live zones.
	if got, want := topo.Zones(), []string{"", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Zones = %q, want %q", got, want)
	}
	if got := topo.NumZones(); got != 3 {
		t.Errorf("NumZones = %d, want 3", got)
	}
	aliveTests := []struct {
		zone  string
		nodes []string
	}{
		{"a", []string{"n1", "n3"}},
		{"b", []string{"n5"}},
		{"", []string{"n6"}},
		{"c", nil},
		{"nowhere", nil},
	}
	for _, at := range aliveTests {
		if got := topo.AliveNodes(at.zone); !slices.Equal(got, at.nodes) {
			t.Errorf("AliveNodes(%q) = %q, want %q", at.zone, got, at.nodes)
		}
		if got := topo.AliveCount(at.zone); got != len(at.nodes) {
			t.Errorf("AliveCount(%q) = %d, want %d", at.zone, got, len(at.nodes))
		}
	}
	isAlive := map[string]bool{"n1": true, "n2": false, "n3": true, "n4": false, "n5": true, "n6": true, "n7": false, "zz": false}
	for name, want := range isAlive {
		if got := topo.IsAlive(name); got != want {
			t.Errorf("IsAlive(%q) = %v, want %v", name, got, want)
		}
	}
	if z, ok := topo.ZoneOf("n4"); !ok || z != "b" {
		t.Errorf("ZoneOf(n4) = %q, %v; want b, true (dead nodes stay known)", z, ok)
	}
	if z, ok := topo.ZoneOf("n6"); !ok || z != "" {
		t.Errorf("ZoneOf(n6) = %q, %v; want \"\", true", z, ok)
	}
	if _, ok := topo.ZoneOf("zz"); ok {
		t.Errorf("ZoneOf(zz) found an unknown node")
	}
	if m, ok := topo.Member("n5"); !ok || m != members[0] {
		t.Errorf("Member(n5) = %+v, %v; want %+v", m, ok, members[0])
	}
	if _, ok := topo.Member("zz"); ok {
		t.Errorf("Member(zz) found an unknown node")
	}
	all := topo.Members()
	if len(all) != len(members) {
		t.Fatalf("Members has %d entries, want %d", len(all), len(members))
	}
	if !slices.IsSortedFunc(all, func(a, b syncbus.Member) int { return cmp.Compare(a.Name, b.Name) }) {
		t.Errorf("Members not sorted by name: %v", all)
	}
}

func TestTopologyIsImmutable(t *testing.T) {
	members := zonestest.Members(t, "a:n1,n2 b:n3")
	topo, err := zones.New("n1", members)
	if err != nil {
		t.Fatal(err)
	}
	// Changing the caller's slice after New must not reach the topology.
	members[1].State = syncbus.MemberFailed
	members[2].Zone = "x"
	if !topo.IsAlive("n2") {
		t.Errorf("n2 died in the topology when the input slice changed")
	}
	if z, _ := topo.ZoneOf("n3"); z != "b" {
		t.Errorf("ZoneOf(n3) = %q after the input changed, want b", z)
	}
	// Results are copies.
	topo.Members()[0].Name = "mutated"
	topo.Zones()[0] = "mutated"
	topo.AliveNodes("a")[0] = "mutated"
	topo.ZonePeers("a")[0] = "mutated"
	if _, ok := topo.Member("n1"); !ok {
		t.Errorf("mutating Members() changed the topology")
	}
	if got := topo.Zones(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Zones = %q after mutating a result", got)
	}
	if got := topo.AliveNodes("a"); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Errorf("AliveNodes(a) = %q after mutating a result", got)
	}
}

func TestLocalNodeIsAlwaysAlive(t *testing.T) {
	for _, st := range []syncbus.MemberState{syncbus.MemberSuspect, syncbus.MemberLeft, syncbus.MemberFailed, syncbus.MemberState(42)} {
		t.Run(st.String(), func(t *testing.T) {
			members := []syncbus.Member{{Name: "n1", Zone: "a", State: st}, {Name: "n2", Zone: "b"}}
			topo, err := zones.New("n1", members)
			if err != nil {
				t.Fatal(err)
			}
			if !topo.IsAlive("n1") || topo.Size() != 2 || topo.AliveCount("a") != 1 {
				t.Errorf("local node in state %v: IsAlive=%v Size=%d AliveCount(a)=%d; want true, 2, 1",
					st, topo.IsAlive("n1"), topo.Size(), topo.AliveCount("a"))
			}
		})
	}
}

func TestInvalidStateCountsAsDead(t *testing.T) {
	topo, err := zones.New("n1", []syncbus.Member{{Name: "n1"}, {Name: "n2", State: syncbus.MemberState(200)}})
	if err != nil {
		t.Fatal(err)
	}
	if topo.IsAlive("n2") || topo.Size() != 1 {
		t.Errorf("a node in an undefined state counts as alive")
	}
}

func TestZeroTopologyIsEmpty(t *testing.T) {
	var topo zones.Topology
	if topo.Local() != "" || topo.LocalZone() != "" || topo.Size() != 0 || topo.NumZones() != 0 {
		t.Errorf("zero Topology is not empty")
	}
	if topo.Zones() != nil || topo.Members() != nil || topo.AliveNodes("") != nil || topo.ZonePeers("") != nil {
		t.Errorf("zero Topology lists something")
	}
	if got := topo.Plan(zones.ModeRelay, 1, nil); len(got) != 0 {
		t.Errorf("zero Topology plans %v", got)
	}
	if _, ok := topo.PickRelay("", 1, nil); ok {
		t.Errorf("zero Topology picks a relay")
	}
	if topo.IsAlive("") {
		t.Errorf("zero Topology has an alive node")
	}
}

func TestZonePeers(t *testing.T) {
	topo := topology(t, "n4", "a:n1,n2/suspect,n3/failed b:n4,n5,n6/left,n7 :n8")
	tests := []struct {
		zone   string
		except []string
		want   []string
	}{
		{"b", []string{"n4", "n1"}, []string{"n5", "n7"}},
		{"b", nil, []string{"n4", "n5", "n7"}},
		{"b", []string{"n4", "n5", "n7"}, nil},
		{"a", []string{"n4"}, []string{"n1", "n2"}},
		{"a", []string{"n3"}, []string{"n1", "n2"}},
		{"", []string{"n4"}, []string{"n8"}},
		{"nowhere", nil, nil},
	}
	for _, tc := range tests {
		if got := topo.ZonePeers(tc.zone, tc.except...); !slices.Equal(got, tc.want) {
			t.Errorf("ZonePeers(%q, %q) = %q, want %q", tc.zone, tc.except, got, tc.want)
		}
		buf := []string{"keep"}
		got := topo.AppendZonePeers(buf, tc.zone, tc.except...)
		if !slices.Equal(got, append([]string{"keep"}, tc.want...)) {
			t.Errorf("AppendZonePeers(%q, %q) = %q, want keep + %q", tc.zone, tc.except, got, tc.want)
		}
	}
}

// TestTopologySharedAcrossGoroutines reads one topology from many goroutines
// at once; run with -race, it shows that planning and querying never write
// to the snapshot.
func TestTopologySharedAcrossGoroutines(t *testing.T) {
	topo, err := zones.New("n00", zonestest.Uniform(60, 3))
	if err != nil {
		t.Fatal(err)
	}
	want := topo.Plan(zones.ModeRelay, 7, nil)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				p := topo.Plan(zones.Mode(i%2), uint64(g*1000+i), func(n string) bool { return n == "n01" })
				if len(p) == 0 {
					errs <- "empty plan"
					return
				}
				tr := zones.NewTracker(topo, zones.Zones(3))
				for _, tg := range p {
					tr.Ack(tg.Node)
				}
				_ = topo.ZonePeers("z1", "n01")
				_ = topo.Zones()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := topo.Plan(zones.ModeRelay, 7, nil); !slices.Equal(got, want) {
		t.Errorf("plan changed after concurrent use: %v, want %v", got, want)
	}
}
