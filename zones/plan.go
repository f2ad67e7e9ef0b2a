package zones

import (
	"encoding/binary"

	"github.com/warpmesh/warp/syncbus"
)

//go:generate go run golang.org/x/tools/cmd/stringer@v0.52.0 -type=Mode,Result -output=enums_string.go

// Mode says how a publisher fans an event out.
type Mode uint8

const (
	// ModeDirect sends the event from the publisher straight to every other
	// alive node. It costs the publisher one datagram per node and gives the
	// lowest latency; it suits small clusters.
	ModeDirect Mode = iota
	// ModeRelay sends the event straight to the other alive nodes of the
	// publisher's zone and to one relay in each other zone, which fans it
	// out inside its zone. Cross-zone traffic drops to one datagram per zone.
	ModeRelay
)

// Target is one datagram a publisher sends for an event.
type Target struct {
	// Node is the receiving node's name.
	Node string
	// Zone is the receiving node's zone.
	Zone string
	// Addr is the receiving node's address, as its member entry gives it.
	Addr string
	// Relay is true when Node must fan the event out to the other alive
	// nodes of Zone (ZonePeers on its own topology) and forward their
	// acknowledgements. It is never true in ModeDirect.
	Relay bool
}

// relayProbes is how many hashed positions pickRelay tries before it scans
// the zone. Each probe picks uniformly among the zone's alive nodes, so the
// first acceptable probe is uniform among the acceptable nodes; with a few
// nodes avoided, four probes almost always find one, and the scan (which
// favours the successor of a rejected node) is the rare fallback.
const relayProbes = 4

// Plan returns the targets of one event published by the local node, in
// order: the publisher's own zone first, then the other zones by name, each
// zone's nodes by name.
//
// In ModeDirect (and for any unknown Mode, since covering every node
// directly is always correct) the targets are every alive node other than
// the local one, none of them a relay; avoid is not consulted.
//
// In ModeRelay the targets are every other alive node of the local zone,
// directly, and exactly one relay per other zone with an alive node. A
// zone's relay is chosen by spread among its alive nodes, so that events
// with different spreads (say Spread of their IDs) put the relay load on
// different nodes; the same spread, avoid and topology always give the same
// relay. When several nodes could serve, the relay is one that avoid does
// not mark and that is not suspect; failing that one that avoid does not
// mark; failing that any alive node of the zone — a zone is never left
// without a target.
//
// Retransmission: avoid is how the same event prefers a different relay
// after a failure. A publisher whose relay for a zone went silent plans the
// retransmission with the same spread and an avoid that marks the silent
// relay (and any relay that failed before); the zone then gets another relay
// whenever it has another alive node. PickRelay re-plans a single zone the
// same way. avoid may be nil; it must be cheap and give the same answer for
// the same name during one call, since it may be asked more than once.
//
// Every alive node other than the publisher is covered exactly once: as a
// direct target, as a relay, or as one of its relay's ZonePeers (given the
// relay's topology agrees with the publisher's).
//
// Plan takes O(L + Z) time, where L is the number of alive nodes in the
// local zone and Z the number of zones, plus, per remote zone, O(1) calls to
// avoid while few of its nodes are avoided and O(size of the zone) when
// most are; ModeDirect takes O(N). It makes one allocation, the result; use
// AppendPlan with a reused buffer to make none.
func (t *Topology) Plan(mode Mode, spread uint64, avoid func(name string) bool) []Target {
	return t.AppendPlan(make([]Target, 0, t.planSize(mode)), mode, spread, avoid)
}

// AppendPlan is Plan appending the targets to dst.
func (t *Topology) AppendPlan(dst []Target, mode Mode, spread uint64, avoid func(name string) bool) []Target {
	if !t.hasLocal {
		return dst
	}
	lz := t.nodes[t.local].zone
	for _, i := range t.zones[lz].alive {
		if i != t.local {
			dst = append(dst, t.target(i, false))
		}
	}
	for zi := range t.zones {
		z := &t.zones[zi]
		if int32(zi) == lz || len(z.alive) == 0 {
			continue
		}
		if mode != ModeRelay {
			for _, i := range z.alive {
				dst = append(dst, t.target(i, false))
			}
			continue
		}
		// A remote zone never holds the local node, so a relay always exists.
		if i, ok := t.pickRelay(z, spread, avoid); ok {
			dst = append(dst, t.target(i, true))
		}
	}
	return dst
}

// PickRelay chooses the relay of one zone exactly as Plan in ModeRelay
// would with the same spread and avoid; use it to replace a zone's silent
// relay without re-planning the other zones. The local node is never
// chosen. ok is false when the zone has no alive node other than the local
// one.
func (t *Topology) PickRelay(zone string, spread uint64, avoid func(name string) bool) (tgt Target, ok bool) {
	zi, found := t.zoneIndex(zone)
	if !found {
		return Target{}, false
	}
	i, ok := t.pickRelay(&t.zones[zi], spread, avoid)
	if !ok {
		return Target{}, false
	}
	return t.target(i, true), true
}

// planSize is the exact number of targets Plan returns, so Plan allocates
// once.
func (t *Topology) planSize(mode Mode) int {
	if !t.hasLocal {
		return 0
	}
	if mode != ModeRelay {
		return t.alive - 1
	}
	lz := t.nodes[t.local].zone
	n := len(t.zones[lz].alive) - 1
	n += t.liveZones - 1 // every other zone with an alive node gets one relay
	return n
}

func (t *Topology) target(i int32, relay bool) Target {
	m := &t.nodes[i].m
	return Target{Node: m.Name, Zone: m.Zone, Addr: m.Addr, Relay: relay}
}

// pickRelay returns the relay of zone z for spread. Candidates are ranked:
// rank 0 is neither avoided nor suspect, 1 suspect, 2 avoided, 3 both; the
// local node is never a candidate. It first probes a few hashed positions
// for a rank-0 node, then scans the zone from the last probe for the best
// rank.
func (t *Topology) pickRelay(z *zone, spread uint64, avoid func(string) bool) (int32, bool) {
	n := uint64(len(z.alive))
	if n == 0 {
		return 0, false
	}
	const unusable = 4
	rank := func(i int32) int {
		if t.hasLocal && i == t.local {
			return unusable
		}
		r := 0
		if t.nodes[i].suspect {
			r++
		}
		if avoid != nil && avoid(t.nodes[i].m.Name) {
			r += 2
		}
		return r
	}
	// Mixing in the zone's hash keeps the choices of different zones
	// independent: the same spread does not pick "the third node" of every
	// zone.
	h := mix64(spread ^ z.hash)
	var pos uint64
	for range relayProbes {
		pos = h % n
		if rank(z.alive[pos]) == 0 {
			return z.alive[pos], true
		}
		h = mix64(h + 0x9e3779b97f4a7c15)
	}
	best, bestRank := int32(0), unusable
	for k := range n {
		i := z.alive[(pos+k)%n]
		if r := rank(i); r < bestRank {
			best, bestRank = i, r
			if r == 0 {
				break
			}
		}
	}
	return best, bestRank < unusable
}

// Spread derives a plan's spread from an event ID, so that successive events
// of one publisher (whose IDs differ only in a counter) pick their relays
// independently.
func Spread(id syncbus.EventID) uint64 {
	return mix64(binary.BigEndian.Uint64(id[:8]) ^ mix64(binary.BigEndian.Uint64(id[8:])))
}

// mix64 is the SplitMix64 finaliser: a bijection on uint64 whose output bits
// each depend on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashString is 64-bit FNV-1a, written out because hash/fnv allocates.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
