package syncbus

import (
	"slices"
)

// ackCount counts the acknowledgements of one awaiting call of the
// in-memory bus against the nodes alive when the call started. It is owned
// by the goroutine of that call.
type ackCount struct {
	kind       QuorumKind
	required   int
	zoneQuorum int // as asked (0 = none), for QuorumError
	publisher  string
	available  int

	nodes     []string // other nodes that acked, in ack order
	nodeZones []string // their zones
	// For QuorumZones: how many applied per zone, how many are needed
	// (min(q, alive nodes of the zone)) and how many zones reached that.
	have  map[string]int
	need  map[string]int
	zones int
}

// newAckCount prepares the count for a call by publisher given the nodes
// alive when it starts. required <= 0 means 1.
func newAckCount(kind QuorumKind, required, zoneQuorum int, publisher string, alive []*InMemoryBus) *ackCount {
	if required <= 0 {
		required = 1
	}
	a := &ackCount{kind: kind, required: required, publisher: publisher}
	switch kind {
	case QuorumZones:
		if zoneQuorum > 0 {
			a.zoneQuorum = zoneQuorum
		}
		q := max(zoneQuorum, 1)
		a.have = make(map[string]int)
		a.need = make(map[string]int)
		for _, n := range alive {
			a.need[n.zone]++
		}
		for z, n := range a.need {
			a.need[z] = min(q, n)
		}
		// Every zone with an alive node can reach its threshold, since the
		// threshold never exceeds the zone's alive nodes.
		a.available = len(a.need)
	default:
		for _, n := range alive {
			if n.name != publisher {
				a.available++
			}
		}
	}
	return a
}

// feasible reports whether the alive members could satisfy the call.
func (a *ackCount) feasible() bool { return a.required <= a.available }

// applied records that node, in zone, handed the event to its
// subscriptions: the publisher itself (which counts toward its zone but is
// never a replica), or an acknowledging node.
func (a *ackCount) applied(node, zone string) {
	if node != a.publisher {
		a.nodes = append(a.nodes, node)
		a.nodeZones = append(a.nodeZones, zone)
	}
	if a.kind == QuorumZones {
		a.have[zone]++
		if a.have[zone] == a.need[zone] {
			a.zones++
		}
	}
}

// satisfied reports whether enough nodes or zones applied the event.
func (a *ackCount) satisfied() bool {
	if a.kind == QuorumZones {
		return a.zones >= a.required
	}
	return len(a.nodes) >= a.required
}

// ackedNodes returns the other nodes that acked, sorted.
func (a *ackCount) ackedNodes() []string {
	return slices.Sorted(slices.Values(a.nodes))
}

// ackedZones returns, sorted, the zones that count for a zone requirement
// (the publisher's included), or the zones of the acking nodes for a
// replica requirement.
func (a *ackCount) ackedZones() []string {
	var zs []string
	if a.kind == QuorumZones {
		for z, n := range a.have {
			if n >= a.need[z] {
				zs = append(zs, z)
			}
		}
	} else {
		zs = slices.Clone(a.nodeZones)
	}
	slices.Sort(zs)
	return slices.Compact(zs)
}

// report fills r, when not nil.
func (a *ackCount) report(r *AckReport) {
	if r == nil {
		return
	}
	r.Nodes = a.ackedNodes()
	r.Zones = a.ackedZones()
}

// failure returns the QuorumError for this count.
func (a *ackCount) failure(failFast bool, cause error) *QuorumError {
	return &QuorumError{
		Kind:       a.kind,
		Required:   a.required,
		ZoneQuorum: a.zoneQuorum,
		Available:  a.available,
		FailFast:   failFast,
		AckedNodes: a.ackedNodes(),
		AckedZones: a.ackedZones(),
		Cause:      cause,
	}
}
