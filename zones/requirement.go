package zones

import (
	"strconv"

	"github.com/warpmesh/warp/syncbus"
)

// Requirement is what an awaiting publish waits for: a number of replicas
// (distinct other nodes that acknowledged) or a number of zones where the
// event was applied, optionally with a per-zone quorum. Build one with
// Replicas or Zones. The zero Requirement asks for one replica.
type Requirement struct {
	kind   syncbus.QuorumKind
	count  int
	quorum int
}

// Replicas asks for n distinct nodes other than the publisher to acknowledge
// (PublishAndAwait). n <= 0 means 1.
func Replicas(n int) Requirement {
	return Requirement{kind: syncbus.QuorumReplicas, count: max(n, 1)}
}

// Zones asks for the event to be applied in k distinct zones, the
// publisher's own zone included, because the publisher applied it locally
// (PublishAndAwaitTopology). k <= 0 means 1.
func Zones(k int) Requirement {
	return Requirement{kind: syncbus.QuorumZones, count: max(k, 1)}
}

// WithZoneQuorum returns r where a zone counts only once q of its nodes —
// or all its alive nodes, if it has fewer — applied the event; in the
// publisher's own zone the publisher is one of them. q <= 0 means 1 (any
// one node makes a zone count, as without a quorum). It has no effect on a
// replicas requirement.
func (r Requirement) WithZoneQuorum(q int) Requirement {
	if r.Kind() == syncbus.QuorumZones {
		r.quorum = max(q, 0)
	}
	return r
}

// Kind says whether r counts replicas or zones.
func (r Requirement) Kind() syncbus.QuorumKind {
	if r.kind == syncbus.QuorumZones {
		return syncbus.QuorumZones
	}
	return syncbus.QuorumReplicas
}

// Count is the number of replicas or zones required, at least 1.
func (r Requirement) Count() int { return max(r.count, 1) }

// ZoneQuorum is the per-zone quorum as asked: 0 when none was asked (or
// q <= 0), which counts as 1. It is what syncbus.QuorumError.ZoneQuorum
// reports.
func (r Requirement) ZoneQuorum() int { return r.quorum }

// String describes r, as in "replicas(2)" or "zones(3, quorum 2)".
func (r Requirement) String() string {
	if r.Kind() == syncbus.QuorumReplicas {
		return "replicas(" + strconv.Itoa(r.Count()) + ")"
	}
	s := "zones(" + strconv.Itoa(r.Count())
	if r.quorum > 0 {
		s += ", quorum " + strconv.Itoa(r.quorum)
	}
	return s + ")"
}

// need is how many nodes of a zone with alive alive nodes must have applied
// an event for the zone to count: the quorum, or every alive node if there
// are fewer, and never less than one — a zone whose nodes all died counts
// only if one of them acknowledged before dying.
func (r Requirement) need(alive int) int32 {
	return int32(max(1, min(max(r.quorum, 1), alive)))
}

// Feasible is the fail-fast check made before sending: ok reports whether
// the alive nodes of t (suspect ones included) could satisfy req if they all
// acknowledged, and available is the most replicas or zones they could
// provide. For replicas that is the number of alive nodes other than the
// local one. For zones it is the number of zones with an alive node: a zone
// quorum never makes a request infeasible, since a zone with fewer alive
// nodes than the quorum needs all of them and no more. A nil t has nothing
// to offer. Feasible takes O(1) time and does not allocate.
func Feasible(t *Topology, req Requirement) (ok bool, available int) {
	if t == nil || !t.hasLocal {
		return false, 0
	}
	if req.Kind() == syncbus.QuorumZones {
		available = t.liveZones
	} else {
		available = t.alive - 1
	}
	return available >= req.Count(), available
}

// CheckFeasible returns nil when Feasible(t, req) holds, and otherwise the
// *syncbus.QuorumError a publisher returns when it fails fast: FailFast set,
// Required, ZoneQuorum and Available filled in, nothing acknowledged (the
// event was not sent, nor applied locally). It matches
// syncbus.ErrQuorumNotSatisfied with errors.Is.
func CheckFeasible(t *Topology, req Requirement) error {
	ok, available := Feasible(t, req)
	if ok {
		return nil
	}
	return &syncbus.QuorumError{
		Kind:       req.Kind(),
		Required:   req.Count(),
		ZoneQuorum: req.ZoneQuorum(),
		Available:  available,
		FailFast:   true,
	}
}
