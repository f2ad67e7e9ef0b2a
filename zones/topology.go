package zones

import (
	"cmp"
	"slices"

	"github.com/warpmesh/warp/syncbus"
)

// Topology is an immutable snapshot of a cluster as one node (the local node)
// sees it: every known member, the zones they sit in, and which of them are
// alive. Build one with New whenever the membership changes and share it
// freely: a Topology is never modified after New returns, so it is safe for
// concurrent use without locks.
//
// A node counts as alive when its state is alive or suspect
// (syncbus.MemberState.Alive). Left and failed nodes stay known — their name,
// zone and address can still be looked up, and an acknowledgement they sent
// before dying still counts — but they are in no alive set, never a target
// and never a relay. The local node always counts as alive, whatever state
// the member list gives it: it is the node running this code.
//
// Nodes whose zone is empty form the zone "", which is a zone like any other.
//
// The zero Topology is empty: it has no nodes and no local node. Methods must
// not be called on a nil *Topology.
type Topology struct {
	// nodes holds every known member, sorted by name. Node indices (int32,
	// to halve the size of the per-zone index slices) point into it.
	nodes []node
	// index maps a member's name to its position in nodes. It is the one
	// hash lookup an acknowledgement costs.
	index map[string]int32
	// zones holds every zone some known member sits in, sorted by name,
	// including zones whose nodes are all dead.
	zones []zone
	// local is the local node's index; hasLocal is false only for the zero
	// Topology.
	local    int32
	hasLocal bool
	// alive is the number of alive nodes, the local node included.
	alive int
	// liveZones is the number of zones with at least one alive node.
	liveZones int
}

// node is one known member with the facts planning and counting need,
// precomputed so the hot paths never look at MemberState again.
type node struct {
	m     syncbus.Member
	zone  int32
	alive bool
	// suspect nodes are alive but make worse relays: they may be dying.
	suspect bool
}

// zone is one zone: its name, a hash of the name that keeps relay choices of
// different zones independent, and its alive nodes.
type zone struct {
	name string
	hash uint64
	// alive holds the indices of the zone's alive nodes in name order
	// (because nodes is sorted by name). All zones share one backing array.
	alive []int32
}

// New builds the topology of members as the node named local sees it.
//
// members must include the local node and must not contain two members of
// the same name or a member without a name; New returns ErrNoLocal or a
// *MemberError (matching ErrEmptyName or ErrDuplicateName) otherwise. The
// slice is copied; the caller may reuse it. The order of members does not
// matter.
//
// New takes O(N log N) time for N members and makes a constant number of
// allocations (the node table, the name index, the zone table and the
// zones' shared alive array).
func New(local string, members []syncbus.Member) (*Topology, error) {
	index := make(map[string]int32, len(members))
	for i, m := range members {
		if m.Name == "" {
			return nil, &MemberError{Index: i, Err: ErrEmptyName}
		}
		if _, dup := index[m.Name]; dup {
			return nil, &MemberError{Index: i, Name: m.Name, Err: ErrDuplicateName}
		}
		index[m.Name] = int32(i)
	}
	if _, ok := index[local]; !ok {
		return nil, ErrNoLocal
	}

	t := &Topology{index: index, hasLocal: true}
	t.nodes = make([]node, len(members))
	for i, m := range members {
		t.nodes[i] = node{m: m, alive: m.State.Alive(), suspect: m.State == syncbus.MemberSuspect}
	}
	slices.SortFunc(t.nodes, func(a, b node) int { return cmp.Compare(a.m.Name, b.m.Name) })
	for i := range t.nodes {
		index[t.nodes[i].m.Name] = int32(i)
	}
	t.local = index[local]
	// The local node is running this code, so it is alive whatever a
	// (possibly stale) member list says, and never treated as suspect.
	t.nodes[t.local].alive = true
	t.nodes[t.local].suspect = false

	t.buildZones()
	return t, nil
}

// buildZones fills t.zones from t.nodes and counts the alive nodes and zones.
func (t *Topology) buildZones() {
	names := make([]string, len(t.nodes))
	for i := range t.nodes {
		names[i] = t.nodes[i].m.Zone
	}
	slices.Sort(names)
	names = slices.Compact(names)

	t.zones = make([]zone, len(names))
	counts := make([]int, len(names))
	for zi, name := range names {
		t.zones[zi] = zone{name: name, hash: hashString(name)}
	}
	for i := range t.nodes {
		zi, _ := slices.BinarySearch(names, t.nodes[i].m.Zone)
		t.nodes[i].zone = int32(zi)
		if t.nodes[i].alive {
			counts[zi]++
			t.alive++
		}
	}
	// One backing array for every zone's alive list: each zone gets a
	// full-capacity window of it, so appends cannot spill into a neighbour.
	backing := make([]int32, t.alive)
	off := 0
	for zi, c := range counts {
		t.zones[zi].alive = backing[off : off : off+c]
		off += c
		if c > 0 {
			t.liveZones++
		}
	}
	for i := range t.nodes {
		if t.nodes[i].alive {
			z := &t.zones[t.nodes[i].zone]
			z.alive = append(z.alive, int32(i))
		}
	}
}

// zoneIndex finds a zone by name in O(log Z).
func (t *Topology) zoneIndex(name string) (int, bool) {
	return slices.BinarySearchFunc(t.zones, name, func(z zone, n string) int { return cmp.Compare(z.name, n) })
}

// Local returns the local node's name ("" for the zero Topology).
func (t *Topology) Local() string {
	if !t.hasLocal {
		return ""
	}
	return t.nodes[t.local].m.Name
}

// LocalZone returns the local node's zone.
func (t *Topology) LocalZone() string {
	if !t.hasLocal {
		return ""
	}
	return t.nodes[t.local].m.Zone
}

// Size returns the number of alive nodes, the local node included. The mesh
// compares it with its threshold to choose between ModeDirect and ModeRelay.
func (t *Topology) Size() int { return t.alive }

// NumZones returns the number of zones with at least one alive node, which
// is the most zones an event can be applied in. It does not allocate.
func (t *Topology) NumZones() int { return t.liveZones }

// Zones returns the zones that have at least one alive node, sorted. The
// slice is the caller's.
func (t *Topology) Zones() []string {
	if t.liveZones == 0 {
		return nil
	}
	out := make([]string, 0, t.liveZones)
	for i := range t.zones {
		if len(t.zones[i].alive) > 0 {
			out = append(out, t.zones[i].name)
		}
	}
	return out
}

// AliveNodes returns the alive nodes of zone, the local node included when it
// is there, sorted by name (so the order is stable for equal member lists).
// It returns nil for an unknown zone or one without alive nodes. The slice
// is the caller's.
func (t *Topology) AliveNodes(zone string) []string {
	return t.ZonePeers(zone)
}

// AliveCount returns the number of alive nodes in zone (0 for an unknown
// zone). It does not allocate.
func (t *Topology) AliveCount(zone string) int {
	zi, ok := t.zoneIndex(zone)
	if !ok {
		return 0
	}
	return len(t.zones[zi].alive)
}

// IsAlive reports whether the node called name is known and alive (or
// suspect).
func (t *Topology) IsAlive(name string) bool {
	i, ok := t.index[name]
	return ok && t.nodes[i].alive
}

// ZoneOf returns the zone of the node called name, alive or not; ok is false
// when the topology does not know the node.
func (t *Topology) ZoneOf(name string) (zone string, ok bool) {
	i, ok := t.index[name]
	if !ok {
		return "", false
	}
	return t.nodes[i].m.Zone, true
}

// Member returns the member called name as it was given to New, whatever
// its state; ok is false when the topology does not know it.
func (t *Topology) Member(name string) (m syncbus.Member, ok bool) {
	i, ok := t.index[name]
	if !ok {
		return syncbus.Member{}, false
	}
	return t.nodes[i].m, true
}

// Members returns every known member, dead ones included, sorted by name.
// The slice is the caller's.
func (t *Topology) Members() []syncbus.Member {
	if len(t.nodes) == 0 {
		return nil
	}
	out := make([]syncbus.Member, len(t.nodes))
	for i := range t.nodes {
		out[i] = t.nodes[i].m
	}
	return out
}

// ZonePeers returns the alive nodes of zone except those named in except,
// sorted by name: what a relay fans an event out to, called on the relay's
// own topology as ZonePeers(relay.LocalZone(), relay.Local(), origin). It
// returns nil when no node is left. It takes O(S·E) time for a zone of S
// alive nodes and E exceptions, and allocates only the result.
func (t *Topology) ZonePeers(zone string, except ...string) []string {
	zi, ok := t.zoneIndex(zone)
	if !ok || len(t.zones[zi].alive) == 0 {
		return nil
	}
	out := t.AppendZonePeers(make([]string, 0, len(t.zones[zi].alive)), zone, except...)
	if len(out) == 0 {
		return nil
	}
	return out
}

// AppendZonePeers is ZonePeers appending to dst, so a caller that keeps a
// buffer fans out without allocating. It returns dst unchanged when no node
// is left.
func (t *Topology) AppendZonePeers(dst []string, zone string, except ...string) []string {
	zi, ok := t.zoneIndex(zone)
	if !ok {
		return dst
	}
	for _, i := range t.zones[zi].alive {
		name := t.nodes[i].m.Name
		if !slices.Contains(except, name) {
			dst = append(dst, name)
		}
	}
	return dst
}
