package membership

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// Node is one member of the cluster as this node knows it.
type Node struct {
	// Name is the node's unique name in the cluster.
	Name string
	// Zone and Region are where the node runs, as it announced them.
	Zone   string
	Region string
	// Addr is the node's advertised address: memberlist's and the data
	// plane's.
	Addr netip.AddrPort
	// Boot identifies one run of the node: a node restarted under the same
	// name comes back with another Boot, as a new incarnation whose
	// predecessor's state (sequence numbers, pending acknowledgements) is
	// gone.
	Boot uint64
	// Proto is the data-plane protocol version the node speaks.
	Proto uint8
	// Started is when this incarnation started, by its own clock (zero
	// when it did not say). A publisher learning of a node late sends it
	// what it published since then (the mesh repairs it), so a node that
	// gossip reached late misses nothing silently.
	Started time.Time
	// State is the node's health as this node sees it. Suspect nodes count
	// as alive (State.Alive()).
	State syncbus.MemberState
	// Since is when this node saw the node enter State.
	Since time.Time
}

// Member returns the node as a syncbus.Member.
func (n Node) Member() syncbus.Member {
	var addr string
	if n.Addr.IsValid() {
		addr = n.Addr.String()
	}
	return syncbus.Member{Name: n.Name, Zone: n.Zone, Region: n.Region, Addr: addr, State: n.State}
}

// Snapshot is an immutable view of the cluster at one moment. Taking one
// is an atomic load; a new one is built after each change, with a higher
// Version. A Snapshot and the slices it returns are shared by every reader
// and must not be modified.
type Snapshot struct {
	// Version increases with each change this node has seen.
	Version uint64
	// Local is this node.
	Local Node
	// Nodes holds every member this node knows, the local node included,
	// sorted by name. Left and failed members stay listed for a while
	// (Config.KeepDown) after memberlist has forgotten them.
	Nodes []Node
}

// Lookup returns the member called name.
func (s *Snapshot) Lookup(name string) (Node, bool) {
	i, ok := slices.BinarySearchFunc(s.Nodes, name, func(n Node, name string) int {
		return strings.Compare(n.Name, name)
	})
	if !ok {
		return Node{}, false
	}
	return s.Nodes[i], true
}

// Alive returns the members that count as alive (alive or suspect), the
// local node included, in name order. The slice is the caller's.
func (s *Snapshot) Alive() []Node {
	out := make([]Node, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		if n.State.Alive() {
			out = append(out, n)
		}
	}
	return out
}

// Members returns every node of the snapshot as a syncbus.Member, in name
// order. The slice is the caller's.
func (s *Snapshot) Members() []syncbus.Member {
	out := make([]syncbus.Member, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i] = n.Member()
	}
	return out
}

// EventKind says what happened to a member.
type EventKind uint8

//go:generate go run golang.org/x/tools/cmd/stringer@v0.52.0 -type=EventKind -trimprefix=Event -output=eventkind_string.go

const (
	// EventJoin reports a node that joined, came back after it left or
	// failed, or was restarted (a new Boot).
	EventJoin EventKind = iota + 1
	// EventUpdate reports a node that changed its address, zone or region.
	EventUpdate
	// EventSuspect reports a node that missed its probes; it still counts
	// as alive.
	EventSuspect
	// EventAlive reports a suspect node that answered again.
	EventAlive
	// EventLeave reports a node that left gracefully.
	EventLeave
	// EventFailed reports a node that stopped answering and was declared
	// failed.
	EventFailed
)

// Event reports a change of one member.
type Event struct {
	Kind EventKind
	// Node is the member after the change.
	Node Node
}
