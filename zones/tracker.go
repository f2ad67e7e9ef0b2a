package zones

import (
	"math/bits"
	"slices"
	"strings"

	"github.com/warpmesh/warp/syncbus"
)

// Result is the state of an awaiting publish.
type Result uint8

const (
	// Pending means the requirement is not met yet but acknowledgements from
	// alive nodes that have not acknowledged could still meet it.
	Pending Result = iota
	// Satisfied means the requirement is met.
	Satisfied
	// Impossible means that even if every alive node that has not
	// acknowledged did, the requirement would not be met. It is exact:
	// Impossible holds if and only if no set of further acknowledgements
	// could satisfy the requirement under the current topology.
	Impossible
)

// Tracker counts the acknowledgements of one event against a Requirement.
//
// A Tracker is not safe for concurrent use: it belongs to the goroutine that
// owns the event (the mesh's event loop, say), which feeds it
// acknowledgements and topology changes in order. That keeps every call free
// of locks.
//
// The publisher is the topology's local node. An acknowledgement counts
// once per node, only from a node other than the publisher that the
// current topology knows as alive; a node that acknowledged and then died
// stays counted, because it applied the event.
type Tracker struct {
	topo *Topology
	req  Requirement
	// acked is a bitset over topo.nodes: which known nodes acknowledged.
	acked []uint64
	// gone holds acknowledged nodes that the current topology no longer
	// lists at all (reaped from the member list); they still count.
	gone []goneAck
	// extra holds, sorted, the zones of gone nodes that the current
	// topology does not list; each such zone counts, since a node of it
	// applied the event and it has no alive node to ask for more.
	extra []string
	// applied counts, per zone of topo, the nodes that applied the event:
	// acknowledged nodes (alive or not, gone ones included) plus the
	// publisher in its own zone.
	applied []int32

	// inlineBits and inlineApplied back acked and applied for clusters of
	// up to 128 nodes in up to 4 zones, so NewTracker allocates once there.
	inlineBits    [2]uint64
	inlineApplied [4]int32

	nAcked   int // acknowledged nodes, gone ones included
	unacked  int // alive nodes other than the publisher that have not acknowledged
	counting int // zones that count now (applied >= need)
	possible int // zones that would count if every unacked alive node acknowledged
}

// goneAck is an acknowledged node the current topology does not know.
type goneAck struct {
	name, zone string
}

// NewTracker starts counting the acknowledgements of one event published by
// t's local node. A nil t is taken as an empty topology: nothing can
// acknowledge, and the result is Impossible.
//
// NewTracker takes O(N/64 + Z) time for N known nodes and Z zones. It makes
// one allocation for up to 128 nodes in up to 4 zones, and at most three
// (the tracker, its bitset and its zone counters) beyond.
func NewTracker(t *Topology, req Requirement) *Tracker {
	if t == nil {
		t = &Topology{}
	}
	tr := &Tracker{topo: t, req: req}
	if n := words(len(t.nodes)); n <= len(tr.inlineBits) {
		tr.acked = tr.inlineBits[:n]
	} else {
		tr.acked = make([]uint64, n)
	}
	if n := len(t.zones); n <= len(tr.inlineApplied) {
		tr.applied = tr.inlineApplied[:n]
	} else {
		tr.applied = make([]int32, n)
	}
	tr.recount()
	return tr
}

// Requirement returns what the tracker waits for.
func (tr *Tracker) Requirement() Requirement { return tr.req }

// Topology returns the topology the tracker currently counts against.
func (tr *Tracker) Topology() *Topology { return tr.topo }

// Ack records that the node called name applied the event, whether its
// acknowledgement came directly or forwarded by a relay. It reports whether
// the acknowledgement counted: it does not when name is the publisher, is
// unknown to the current topology or not alive in it, or already
// acknowledged. Ack takes O(1) time (one map lookup) and does not allocate.
func (tr *Tracker) Ack(name string) bool {
	t := tr.topo
	i, ok := t.index[name]
	if !ok || !t.nodes[i].alive || (t.hasLocal && i == t.local) || tr.isAcked(i) {
		return false
	}
	tr.acked[i/64] |= 1 << (uint(i) % 64)
	tr.nAcked++
	tr.unacked--
	z := t.nodes[i].zone
	tr.applied[z]++
	// applied grows by one at a time, so equality marks the one moment the
	// zone starts to count. possible does not change: an alive unacked node
	// became an acked one, and applied+unacked of its zone stays the same.
	if tr.applied[z] == tr.req.need(len(t.zones[z].alive)) {
		tr.counting++
	}
	return true
}

// Result says whether the requirement is satisfied, still pending or
// impossible under the current topology. It takes O(1) time.
func (tr *Tracker) Result() Result {
	have, could := tr.nAcked, tr.nAcked+tr.unacked
	if tr.req.Kind() == syncbus.QuorumZones {
		have, could = tr.counting, tr.possible
	}
	switch need := tr.req.Count(); {
	case have >= need:
		return Satisfied
	case could < need:
		return Impossible
	default:
		return Pending
	}
}

// Available is the most replicas or zones the tracker could reach: what is
// already counted plus what the alive nodes that have not acknowledged
// could add. It is the figure syncbus.QuorumError.Available reports.
func (tr *Tracker) Available() int {
	if tr.req.Kind() == syncbus.QuorumZones {
		return tr.possible
	}
	return tr.nAcked + tr.unacked
}

// Acked returns the number of nodes whose acknowledgement counted.
func (tr *Tracker) Acked() int { return tr.nAcked }

// SetTopology switches the tracker to a new topology of the same local node
// after the membership changed, and recounts. A node that acknowledged stays
// acknowledged, even if it died or is no longer listed; a node that died
// without acknowledging can no longer help, so the result may become
// Impossible; a node that joined becomes a node to wait for. It returns
// ErrLocalMismatch, leaving the tracker unchanged, when t is nil or its
// local node is another one.
//
// SetTopology takes O(N_old + N_new + Z) time and allocates.
func (tr *Tracker) SetTopology(t *Topology) error {
	if t == nil || t.Local() != tr.topo.Local() {
		return ErrLocalMismatch
	}
	old := tr.topo
	acked := make([]uint64, words(len(t.nodes)))
	var gone []goneAck
	for i := range old.nodes {
		if !tr.isAcked(int32(i)) {
			continue
		}
		name := old.nodes[i].m.Name
		if j, ok := t.index[name]; ok {
			acked[j/64] |= 1 << (uint(j) % 64)
		} else {
			gone = append(gone, goneAck{name: name, zone: old.nodes[i].m.Zone})
		}
	}
	// A gone node the new topology lists again (it rejoined) is a known
	// acknowledged node once more.
	for _, g := range tr.gone {
		if j, ok := t.index[g.name]; ok {
			acked[j/64] |= 1 << (uint(j) % 64)
		} else {
			gone = append(gone, g)
		}
	}
	slices.SortFunc(gone, func(a, b goneAck) int { return strings.Compare(a.name, b.name) })
	tr.topo, tr.acked, tr.gone = t, acked, gone
	// recount rebuilds applied from scratch, so the old array can be reused.
	if n := len(t.zones); n <= cap(tr.applied) {
		tr.applied = tr.applied[:n]
	} else {
		tr.applied = make([]int32, n)
	}
	tr.recount()
	return nil
}

// recount derives every counter from topo, acked and gone, in O(N/64 + N_acked + Z).
func (tr *Tracker) recount() {
	t := tr.topo
	clear(tr.applied)
	tr.extra = tr.extra[:0]
	tr.nAcked = len(tr.gone)
	ackedAlive := 0
	for w, word := range tr.acked {
		for word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			tr.nAcked++
			tr.applied[t.nodes[i].zone]++
			if t.nodes[i].alive {
				ackedAlive++
			}
		}
	}
	for _, g := range tr.gone {
		if zi, ok := t.zoneIndex(g.zone); ok {
			tr.applied[zi]++
		} else if k, found := slices.BinarySearch(tr.extra, g.zone); !found {
			tr.extra = slices.Insert(tr.extra, k, g.zone)
		}
	}
	tr.unacked = 0
	if t.hasLocal {
		tr.applied[t.nodes[t.local].zone]++
		tr.unacked = t.alive - 1 - ackedAlive
	}

	// A zone could count iff it has an alive node or something applied
	// there. Proof: with a alive nodes of which u have not acknowledged,
	// applied+u >= a (every alive node applied or may still), and the need
	// is min(q, a) <= a when a >= 1; when a == 0, u == 0 and the need is 1.
	tr.counting, tr.possible = len(tr.extra), len(tr.extra)
	for zi := range t.zones {
		alive := len(t.zones[zi].alive)
		if tr.applied[zi] >= tr.req.need(alive) {
			tr.counting++
		}
		if alive > 0 || tr.applied[zi] > 0 {
			tr.possible++
		}
	}
}

// Unacked returns the alive nodes other than the publisher that have not
// acknowledged, sorted: the targets of a retransmission. It takes O(N) time.
func (tr *Tracker) Unacked() []string {
	t := tr.topo
	if tr.unacked <= 0 {
		return nil
	}
	out := make([]string, 0, tr.unacked)
	for i := range t.nodes {
		if t.nodes[i].alive && !(t.hasLocal && int32(i) == t.local) && !tr.isAcked(int32(i)) {
			out = append(out, t.nodes[i].m.Name)
		}
	}
	return out
}

// AckedNodes returns the nodes whose acknowledgement counted, sorted; never
// the publisher. It is nil when none did.
func (tr *Tracker) AckedNodes() []string {
	if tr.nAcked == 0 {
		return nil
	}
	out := make([]string, 0, tr.nAcked)
	for w, word := range tr.acked {
		for word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			out = append(out, tr.topo.nodes[i].m.Name)
		}
	}
	if len(tr.gone) > 0 {
		for _, g := range tr.gone {
			out = append(out, g.name)
		}
		slices.Sort(out)
	}
	return out
}

// AckedZones returns zones, sorted. For a zones requirement they are the
// zones that count: with a zone quorum only those where enough nodes
// applied the event, and the publisher's own zone as soon as it counts (at
// once without a quorum). For a replicas requirement they are the zones of
// the acknowledged nodes. It is nil when there are none.
func (tr *Tracker) AckedZones() []string {
	t := tr.topo
	var out []string
	zonesReq := tr.req.Kind() == syncbus.QuorumZones
	for zi := range t.zones {
		n := tr.applied[zi]
		var in bool
		if zonesReq {
			in = n >= tr.req.need(len(t.zones[zi].alive))
		} else {
			if t.hasLocal && int32(zi) == t.nodes[t.local].zone {
				n-- // the publisher is not a replica
			}
			in = n > 0
		}
		if in {
			out = append(out, t.zones[zi].name)
		}
	}
	if len(tr.extra) > 0 {
		out = append(out, tr.extra...)
		slices.Sort(out)
	}
	return out
}

// Report returns the acknowledged nodes and zones, as WithAckReport wants
// them filled in.
func (tr *Tracker) Report() syncbus.AckReport {
	return syncbus.AckReport{Nodes: tr.AckedNodes(), Zones: tr.AckedZones()}
}

// Err returns the *syncbus.QuorumError for an awaiting call that stops
// before the requirement is met, with the tracker's figures (Available as
// the tracker sees it now) and cause (usually the context's error, or nil).
// It matches syncbus.ErrQuorumNotSatisfied, and cause, with errors.Is.
func (tr *Tracker) Err(cause error) error {
	return &syncbus.QuorumError{
		Kind:       tr.req.Kind(),
		Required:   tr.req.Count(),
		ZoneQuorum: tr.req.ZoneQuorum(),
		Available:  tr.Available(),
		AckedNodes: tr.AckedNodes(),
		AckedZones: tr.AckedZones(),
		Cause:      cause,
	}
}

func (tr *Tracker) isAcked(i int32) bool {
	return tr.acked[i/64]&(1<<(uint(i)%64)) != 0
}

// words is the number of uint64 words a bitset over n nodes needs.
func words(n int) int { return (n + 63) / 64 }
