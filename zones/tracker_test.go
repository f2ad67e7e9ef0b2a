package zones_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// op is one step fed to a tracker: an acknowledgement from ack (counted says
// whether it must count) or, when topo is set, a new topology for the same
// local node. result is the tracker's expected state after the step.
type op struct {
	ack     string
	counted bool
	topo    string
	result  zones.Result
}

func ack(name string, counted bool, result zones.Result) op {
	return op{ack: name, counted: counted, result: result}
}

func retopo(spec string, result zones.Result) op { return op{topo: spec, result: result} }

func TestTrackerTable(t *testing.T) {
	const (
		P = zones.Pending
		S = zones.Satisfied
		I = zones.Impossible
	)
	tests := []struct {
		name  string
		spec  string
		local string
		req   zones.Requirement
		start zones.Result
		ops   []op
		// Figures after the last op.
		nodes     []string
		zones     []string
		available int
		unacked   []string
	}{
		// Replicas.
		{
			name: "replicas: one other node", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Replicas(1), start: P,
			ops:   []op{ack("n3", true, S)},
			nodes: []string{"n3"}, zones: []string{"b"}, available: 2, unacked: []string{"n2"},
		},
		{
			name: "replicas: zero means one", spec: "a:n1,n2", local: "n1",
			req: zones.Replicas(0), start: P,
			ops:   []op{ack("n2", true, S)},
			nodes: []string{"n2"}, zones: []string{"a"}, available: 1,
		},
		{
			name: "replicas: negative means one", spec: "a:n1,n2", local: "n1",
			req: zones.Replicas(-4), start: P,
			ops:   []op{ack("n2", true, S)},
			nodes: []string{"n2"}, zones: []string{"a"}, available: 1,
		},
		{
			name: "replicas: zero requirement value is one replica", spec: "a:n1,n2", local: "n1",
			req: zones.Requirement{}, start: P,
			ops:   []op{ack("n2", true, S)},
			nodes: []string{"n2"}, zones: []string{"a"}, available: 1,
		},
		{
			name: "replicas: duplicate acks count once", spec: "a:n1,n2 b:n3,n4", local: "n1",
			req: zones.Replicas(2), start: P,
			ops:   []op{ack("n2", true, P), ack("n2", false, P), ack("n2", false, P), ack("n4", true, S), ack("n4", false, S)},
			nodes: []string{"n2", "n4"}, zones: []string{"a", "b"}, available: 3, unacked: []string{"n3"},
		},
		{
			name: "replicas: self, unknown, dead and left acks are ignored", spec: "a:n1,n2/failed b:n3/left,n4", local: "n1",
			req: zones.Replicas(1), start: P,
			ops:       []op{ack("n1", false, P), ack("zz", false, P), ack("", false, P), ack("n2", false, P), ack("n3", false, P)},
			available: 1, unacked: []string{"n4"},
		},
		{
			name: "replicas: suspect nodes count", spec: "a:n1,n2/suspect", local: "n1",
			req: zones.Replicas(1), start: P,
			ops:   []op{ack("n2", true, S)},
			nodes: []string{"n2"}, zones: []string{"a"}, available: 1,
		},
		{
			name: "replicas: more than the other alive nodes is impossible at once", spec: "a:n1,n2 b:n3,n4/failed", local: "n1",
			req: zones.Replicas(3), start: I,
			ops:   []op{ack("n2", true, I), ack("n3", true, I)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "replicas: a death makes the request impossible", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Replicas(2), start: P,
			ops:   []op{ack("n2", true, P), retopo("a:n1,n2 b:n3/failed", I), ack("n3", false, I)},
			nodes: []string{"n2"}, zones: []string{"a"}, available: 1,
		},
		{
			name: "replicas: an acked node that dies stays acked", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Replicas(2), start: P,
			ops:   []op{ack("n2", true, P), retopo("a:n1,n2/failed b:n3", P), ack("n2", false, P), ack("n3", true, S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "replicas: an acked node dropped from the list stays acked", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Replicas(2), start: P,
			ops:   []op{ack("n2", true, P), retopo("a:n1 b:n3", P), ack("n3", true, S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "replicas: a dropped node that rejoins is not counted twice", spec: "a:n1,n2 b:n3,n4", local: "n1",
			req: zones.Replicas(3), start: P,
			ops: []op{
				ack("n2", true, P), retopo("a:n1 b:n3", I), retopo("a:n1,n2 b:n3,n4", P),
				ack("n2", false, P), ack("n3", true, P), ack("n4", true, S),
			},
			nodes: []string{"n2", "n3", "n4"}, zones: []string{"a", "b"}, available: 3,
		},
		{
			name: "replicas: a join makes an impossible request pending", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Replicas(3), start: I,
			ops: []op{
				ack("n4", false, I), // not in the topology yet
				retopo("a:n1,n2 b:n3,n4/suspect", P),
				ack("n4", true, P), ack("n2", true, P), ack("n3", true, S),
			},
			nodes: []string{"n2", "n3", "n4"}, zones: []string{"a", "b"}, available: 3,
		},
		{
			name: "replicas: alone in the cluster", spec: "a:n1", local: "n1",
			req: zones.Replicas(1), start: I,
			ops:       []op{ack("n1", false, I)},
			available: 0,
		},

		// Zones.
		{
			name: "zones: one zone is the publisher's own", spec: "a:n1 b:n2", local: "n1",
			req: zones.Zones(1), start: S,
			zones: []string{"a"}, available: 2, unacked: []string{"n2"},
		},
		{
			name: "zones: zero means one", spec: "a:n1 b:n2", local: "n1",
			req: zones.Zones(0), start: S,
			zones: []string{"a"}, available: 2, unacked: []string{"n2"},
		},
		{
			name: "zones: two zones", spec: "a:n1,n2 b:n3 c:n4", local: "n1",
			req: zones.Zones(2), start: P,
			ops:   []op{ack("n2", true, P), ack("n4", true, S)},
			nodes: []string{"n2", "n4"}, zones: []string{"a", "c"}, available: 3, unacked: []string{"n3"},
		},
		{
			name: "zones: more zones than alive ones is impossible", spec: "a:n1 b:n2 c:n3/failed", local: "n1",
			req: zones.Zones(3), start: I,
			ops:   []op{ack("n2", true, I), ack("n3", false, I)},
			nodes: []string{"n2"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: empty zone counts as a zone", spec: "a:n1 :n2", local: "n1",
			req: zones.Zones(2), start: P,
			ops:   []op{ack("n2", true, S)},
			nodes: []string{"n2"}, zones: []string{"", "a"}, available: 2,
		},
		{
			name: "zones: quorum 2", spec: "a:n1,n2 b:n3,n4,n5 c:n6", local: "n1",
			req: zones.Zones(3).WithZoneQuorum(2), start: P,
			ops: []op{
				ack("n3", true, P), // b: 1 of 2
				ack("n4", true, P), // b counts
				ack("n6", true, P), // c: 1 alive node, so 1 is enough
				ack("n5", true, P), // b already counts
				ack("n2", true, S), // a: publisher and n2
			},
			nodes: []string{"n2", "n3", "n4", "n5", "n6"}, zones: []string{"a", "b", "c"}, available: 3,
		},
		{
			name: "zones: quorum larger than every zone needs all alive nodes", spec: "a:n1,n2 b:n3,n4,n5/failed", local: "n1",
			req: zones.Zones(2).WithZoneQuorum(5), start: P,
			ops: []op{
				ack("n3", true, P),
				ack("n4", true, P), // b counts: both alive nodes applied
				ack("n2", true, S),
			},
			nodes: []string{"n2", "n3", "n4"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: quorum with the publisher alone in its zone", spec: "a:n1 b:n2,n3", local: "n1",
			req: zones.Zones(2).WithZoneQuorum(2), start: P,
			ops:   []op{ack("n2", true, P), ack("n3", true, S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: quorum zero means one", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Zones(1).WithZoneQuorum(0), start: S,
			zones: []string{"a"}, available: 2, unacked: []string{"n2", "n3"},
		},
		{
			name: "zones: negative quorum means one", spec: "a:n1,n2 b:n3", local: "n1",
			req: zones.Zones(2).WithZoneQuorum(-3), start: P,
			ops:   []op{ack("n3", true, S)},
			nodes: []string{"n3"}, zones: []string{"a", "b"}, available: 2, unacked: []string{"n2"},
		},
		{
			name: "zones: suspect nodes count toward a quorum", spec: "a:n1 b:n2/suspect,n3", local: "n1",
			req: zones.Zones(2).WithZoneQuorum(2), start: P,
			ops:   []op{ack("n2", true, P), ack("n3", true, S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: a death makes the request impossible", spec: "a:n1 b:n2 c:n3", local: "n1",
			req: zones.Zones(3), start: P,
			ops:   []op{ack("n2", true, P), retopo("a:n1 b:n2 c:n3/failed", I)},
			nodes: []string{"n2"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: a death lowers a zone's quorum", spec: "a:n1 b:n2,n3,n4", local: "n1",
			req: zones.Zones(2).WithZoneQuorum(3), start: P,
			ops:   []op{ack("n2", true, P), ack("n3", true, P), retopo("a:n1 b:n2,n3,n4/left", S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: an acked node that dies keeps its zone", spec: "a:n1 b:n2", local: "n1",
			req: zones.Zones(2), start: P,
			ops:   []op{ack("n2", true, S), retopo("a:n1 b:n2/failed", S)},
			nodes: []string{"n2"}, zones: []string{"a", "b"}, available: 2,
		},
		{
			name: "zones: an acked node dropped with its zone keeps the zone", spec: "a:n1 b:n2 c:n3", local: "n1",
			req: zones.Zones(3), start: P,
			ops:   []op{ack("n2", true, P), retopo("a:n1 c:n3", P), ack("n3", true, S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a", "b", "c"}, available: 3,
		},
		{
			name: "zones: dead, unknown and self acks are ignored", spec: "a:n1 b:n2/failed c:n3", local: "n1",
			req: zones.Zones(2), start: P,
			ops:   []op{ack("n2", false, P), ack("n1", false, P), ack("b", false, P)},
			zones: []string{"a"}, available: 2, unacked: []string{"n3"},
		},
		{
			name: "zones: a quorum makes the own zone wait", spec: "a:n1,n2,n3", local: "n1",
			req: zones.Zones(1).WithZoneQuorum(3), start: P,
			ops:   []op{ack("n3", true, P), ack("n2", true, S)},
			nodes: []string{"n2", "n3"}, zones: []string{"a"}, available: 1,
		},
		{
			name: "zones: the own zone with a dead quorum member", spec: "a:n1,n2,n3", local: "n1",
			req: zones.Zones(1).WithZoneQuorum(3), start: P,
			ops:   []op{ack("n3", true, P), retopo("a:n1,n2/failed,n3", S)},
			nodes: []string{"n3"}, zones: []string{"a"}, available: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := zones.NewTracker(topology(t, tc.local, tc.spec), tc.req)
			if got := tr.Result(); got != tc.start {
				t.Fatalf("start: Result = %v, want %v", got, tc.start)
			}
			for i, o := range tc.ops {
				if o.topo != "" {
					if err := tr.SetTopology(topology(t, tc.local, o.topo)); err != nil {
						t.Fatalf("op %d: SetTopology(%q): %v", i, o.topo, err)
					}
				} else if got := tr.Ack(o.ack); got != o.counted {
					t.Fatalf("op %d: Ack(%q) = %v, want %v", i, o.ack, got, o.counted)
				}
				if got := tr.Result(); got != o.result {
					t.Fatalf("op %d (%+v): Result = %v, want %v", i, o, got, o.result)
				}
			}
			if got := tr.AckedNodes(); !slices.Equal(got, tc.nodes) {
				t.Errorf("AckedNodes = %q, want %q", got, tc.nodes)
			}
			if got := tr.Acked(); got != len(tc.nodes) {
				t.Errorf("Acked = %d, want %d", got, len(tc.nodes))
			}
			if got := tr.AckedZones(); !slices.Equal(got, tc.zones) {
				t.Errorf("AckedZones = %q, want %q", got, tc.zones)
			}
			if got := tr.Available(); got != tc.available {
				t.Errorf("Available = %d, want %d", got, tc.available)
			}
			if got := tr.Unacked(); !slices.Equal(got, tc.unacked) {
				t.Errorf("Unacked = %q, want %q", got, tc.unacked)
			}
			rep := tr.Report()
			if !slices.Equal(rep.Nodes, tc.nodes) || !slices.Equal(rep.Zones, tc.zones) {
				t.Errorf("Report = %+v, want nodes %q zones %q", rep, tc.nodes, tc.zones)
			}
		})
	}
}

func TestTrackerSetTopologyRefusesAnotherLocal(t *testing.T) {
	tr := zones.NewTracker(topology(t, "n1", "a:n1,n2 b:n3"), zones.Replicas(2))
	if !tr.Ack("n2") {
		t.Fatal("Ack(n2) did not count")
	}
	before := tr.Topology()
	for _, other := range []*zones.Topology{nil, topology(t, "n2", "a:n1,n2 b:n3")} {
		if err := tr.SetTopology(other); !errors.Is(err, zones.ErrLocalMismatch) {
			t.Errorf("SetTopology(%v): err = %v, want ErrLocalMismatch", other, err)
		}
	}
	if tr.Topology() != before || tr.Acked() != 1 || tr.Result() != zones.Pending {
		t.Errorf("a refused SetTopology changed the tracker")
	}
}

func TestTrackerOnNilTopology(t *testing.T) {
	for _, req := range []zones.Requirement{zones.Replicas(1), zones.Zones(1)} {
		tr := zones.NewTracker(nil, req)
		if tr.Ack("n1") || tr.Ack("") {
			t.Errorf("%v: an ack counted on a nil topology", req)
		}
		if got := tr.Result(); got != zones.Impossible {
			t.Errorf("%v: Result = %v, want Impossible", req, got)
		}
		if tr.Available() != 0 || tr.AckedNodes() != nil || tr.AckedZones() != nil || tr.Unacked() != nil {
			t.Errorf("%v: a tracker on a nil topology reports something", req)
		}
		if err := tr.SetTopology(nil); !errors.Is(err, zones.ErrLocalMismatch) {
			t.Errorf("%v: SetTopology(nil) = %v, want ErrLocalMismatch", req, err)
		}
	}
}

func TestTrackerErr(t *testing.T) {
	topo := topology(t, "n1", "a:n1,n2 b:n3,n4 c:n5")
	tr := zones.NewTracker(topo, zones.Zones(3).WithZoneQuorum(2))
	tr.Ack("n3")
	tr.Ack("n4")
	tr.Ack("n2")
	err := tr.Err(context.DeadlineExceeded)
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v: want ErrQuorumNotSatisfied and DeadlineExceeded", err)
	}
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("Err is %T, not *syncbus.QuorumError", err)
	}
	want := syncbus.QuorumError{
		Kind: syncbus.QuorumZones, Required: 3, ZoneQuorum: 2, Available: 3,
		AckedNodes: []string{"n2", "n3", "n4"}, AckedZones: []string{"a", "b"},
		Cause: context.DeadlineExceeded,
	}
	if qe.Kind != want.Kind || qe.Required != want.Required || qe.ZoneQuorum != want.ZoneQuorum ||
		qe.Available != want.Available || qe.FailFast || qe.Cause != want.Cause ||
		!slices.Equal(qe.AckedNodes, want.AckedNodes) || !slices.Equal(qe.AckedZones, want.AckedZones) {
		t.Errorf("QuorumError = %+v, want %+v", *qe, want)
	}

	rtr := zones.NewTracker(topo, zones.Replicas(9))
	var rqe *syncbus.QuorumError
	if !errors.As(rtr.Err(nil), &rqe) || rqe.Kind != syncbus.QuorumReplicas || rqe.ZoneQuorum != 0 || rqe.Available != 4 || rqe.Cause != nil {
		t.Errorf("replicas Err = %+v", rqe)
	}
}

func TestFeasible(t *testing.T) {
	topo := topology(t, "n1", "a:n1,n2/suspect b:n3,n4/failed c:n5/left :n6")
	tests := []struct {
		req       zones.Requirement
		ok        bool
		available int
	}{
		{zones.Replicas(1), true, 3},
		{zones.Replicas(3), true, 3},
		{zones.Replicas(4), false, 3},
		{zones.Replicas(0), true, 3},
		{zones.Zones(3), true, 3},
		{zones.Zones(4), false, 3},
		{zones.Zones(-1), true, 3},
		{zones.Zones(3).WithZoneQuorum(10), true, 3},
		{zones.Requirement{}, true, 3},
	}
	for _, tc := range tests {
		ok, available := zones.Feasible(topo, tc.req)
		if ok != tc.ok || available != tc.available {
			t.Errorf("Feasible(%v) = %v, %d; want %v, %d", tc.req, ok, available, tc.ok, tc.available)
		}
		// The fail-fast check and a fresh tracker agree.
		tr := zones.NewTracker(topo, tc.req)
		if (tr.Result() != zones.Impossible) != ok || tr.Available() != available {
			t.Errorf("%v: tracker Result %v Available %d disagree with Feasible %v, %d", tc.req, tr.Result(), tr.Available(), ok, available)
		}
		err := zones.CheckFeasible(topo, tc.req)
		if tc.ok {
			if err != nil {
				t.Errorf("CheckFeasible(%v) = %v, want nil", tc.req, err)
			}
			continue
		}
		var qe *syncbus.QuorumError
		if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) || !errors.As(err, &qe) {
			t.Fatalf("CheckFeasible(%v) = %v, want a *QuorumError", tc.req, err)
		}
		if !qe.FailFast || qe.Available != tc.available || qe.Required != tc.req.Count() ||
			qe.Kind != tc.req.Kind() || qe.AckedNodes != nil || qe.AckedZones != nil {
			t.Errorf("CheckFeasible(%v) = %+v", tc.req, *qe)
		}
	}
	if ok, n := zones.Feasible(nil, zones.Replicas(1)); ok || n != 0 {
		t.Errorf("Feasible(nil) = %v, %d", ok, n)
	}
	if ok, n := zones.Feasible(&zones.Topology{}, zones.Zones(1)); ok || n != 0 {
		t.Errorf("Feasible(empty) = %v, %d", ok, n)
	}
}

func TestRequirement(t *testing.T) {
	tests := []struct {
		req    zones.Requirement
		kind   syncbus.QuorumKind
		count  int
		quorum int
		str    string
	}{
		{zones.Replicas(3), syncbus.QuorumReplicas, 3, 0, "replicas(3)"},
		{zones.Replicas(0), syncbus.QuorumReplicas, 1, 0, "replicas(1)"},
		{zones.Replicas(2).WithZoneQuorum(4), syncbus.QuorumReplicas, 2, 0, "replicas(2)"},
		{zones.Zones(2), syncbus.QuorumZones, 2, 0, "zones(2)"},
		{zones.Zones(-2).WithZoneQuorum(3), syncbus.QuorumZones, 1, 3, "zones(1, quorum 3)"},
		{zones.Zones(2).WithZoneQuorum(-1), syncbus.QuorumZones, 2, 0, "zones(2)"},
		{zones.Requirement{}, syncbus.QuorumReplicas, 1, 0, "replicas(1)"},
	}
	for _, tc := range tests {
		if tc.req.Kind() != tc.kind || tc.req.Count() != tc.count || tc.req.ZoneQuorum() != tc.quorum || tc.req.String() != tc.str {
			t.Errorf("%v: Kind %v Count %d ZoneQuorum %d; want %v %d %d %q",
				tc.req, tc.req.Kind(), tc.req.Count(), tc.req.ZoneQuorum(), tc.kind, tc.count, tc.quorum, tc.str)
		}
	}
}
