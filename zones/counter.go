package zones

import "github.com/warpmesh/warp/syncbus"

// Counter counts the acknowledgements of one awaiting publish for a bus
// that knows its members as a list rather than as a Topology of its own
// (the broker bridges): it builds the topology, checks the request is
// feasible, and rebuilds the topology when the list changes. Its methods
// are those of bridge.Counter. Like a Tracker it is not safe for
// concurrent use.
type Counter struct {
	local string
	tr    *Tracker
}

// NewCounter starts counting for a publish by local among members (local
// included): kind says whether required counts replicas or zones, and
// zoneQuorum is the per-zone quorum of a zones request (0: none). When
// the alive members cannot satisfy the request it returns the fail-fast
// *syncbus.QuorumError instead (see CheckFeasible), and a *MemberError
// when the list itself is unusable.
func NewCounter(local string, members []syncbus.Member, kind syncbus.QuorumKind, required, zoneQuorum int) (*Counter, error) {
	topo, err := New(local, members)
	if err != nil {
		return nil, err
	}
	req := Replicas(required)
	if kind == syncbus.QuorumZones {
		req = Zones(required).WithZoneQuorum(zoneQuorum)
	}
	if err := CheckFeasible(topo, req); err != nil {
		return nil, err
	}
	return &Counter{local: local, tr: NewTracker(topo, req)}, nil
}

// Ack records that node applied the event and reports whether that
// counted (see Tracker.Ack).
func (c *Counter) Ack(node string) bool { return c.tr.Ack(node) }

// Decided reports whether the request is satisfied, or can no longer be.
func (c *Counter) Decided() bool { return c.tr.Result() != Pending }

// Update recounts against a new member list. A list this node cannot
// build a topology from is ignored: the count goes on against the last
// good one.
func (c *Counter) Update(members []syncbus.Member) {
	if topo, err := New(c.local, members); err == nil {
		_ = c.tr.SetTopology(topo) // the same local node: cannot fail
	}
}

// Outcome returns nil when the request is satisfied, filling report when
// it is not nil; otherwise the *syncbus.QuorumError with the figures and
// cause (why waiting stopped, or nil).
func (c *Counter) Outcome(cause error, report *syncbus.AckReport) error {
	if c.tr.Result() == Satisfied {
		if report != nil {
			*report = c.tr.Report()
		}
		return nil
	}
	return c.tr.Err(cause)
}
