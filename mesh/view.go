package mesh

import (
	"net/netip"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// view is what the data plane knows of the cluster at one membership
// version: the topology for planning and counting, and the addresses to
// send to. It is immutable and shared through an atomic pointer; a new one
// is built when the membership's snapshot version moves.
type view struct {
	version uint64
	topo    *zones.Topology
	mode    zones.Mode
	// nodes maps every known member (any state) by name.
	nodes map[string]peer
	// byAddr maps the addresses of known members, to account traffic by
	// zone and to recognise senders.
	byAddr map[netip.AddrPort]peer
	// alive lists the other alive (or suspect) nodes, for digests.
	alive []peer
	// joinSeq is, per alive node, this node's last sequence number when
	// the node entered the view: everything numbered later is sent to it,
	// and its join digest tells it so.
	joinSeq map[string]uint64
}

// peer is one other node as the data plane sees it.
type peer struct {
	name  string
	zone  string
	addr  netip.AddrPort
	boot  uint64
	state syncbus.MemberState
}

// newView builds the view of snap. prev is the view it replaces (nil for
// the first) and seq this node's last sequence number now.
func newView(snap *membership.Snapshot, mode FanoutMode, relayThreshold int, prev *view, seq uint64) (*view, error) {
	members := make([]syncbus.Member, 0, len(snap.Nodes))
	v := &view{
		version: snap.Version,
		nodes:   make(map[string]peer, len(snap.Nodes)),
		byAddr:  make(map[netip.AddrPort]peer, len(snap.Nodes)),
	}
	localSeen := false
	for _, n := range snap.Nodes {
		members = append(members, n.Member())
		p := peer{name: n.Name, zone: n.Zone, addr: n.Addr, boot: n.Boot, state: n.State}
		v.nodes[n.Name] = p
		if n.Name == snap.Local.Name {
			localSeen = true
			continue
		}
		if n.Addr.IsValid() {
			if old, ok := v.byAddr[n.Addr]; !ok || !old.state.Alive() {
				v.byAddr[n.Addr] = p
			}
		}
		if n.State.Alive() {
			v.alive = append(v.alive, p)
			if v.joinSeq == nil {
				v.joinSeq = make(map[string]uint64)
			}
			v.joinSeq[n.Name] = seq
			if prev != nil {
				if old, ok := prev.nodes[n.Name]; ok && old.boot == n.Boot && old.state.Alive() {
					v.joinSeq[n.Name] = prev.joinSeq[n.Name]
				}
			}
		}
	}
	if !localSeen {
		members = append(members, snap.Local.Member())
		v.nodes[snap.Local.Name] = peer{name: snap.Local.Name, zone: snap.Local.Zone, addr: snap.Local.Addr, boot: snap.Local.Boot}
	}
	topo, err := zones.New(snap.Local.Name, members)
	if err != nil {
		return nil, err
	}
	v.topo = topo
	switch mode {
	case FanoutDirect:
		v.mode = zones.ModeDirect
	case FanoutRelay:
		v.mode = zones.ModeRelay
	default:
		v.mode = zones.ModeDirect
		if topo.Size() > relayThreshold {
			v.mode = zones.ModeRelay
		}
	}
	return v, nil
}

// addrOf returns the address of an alive node.
func (v *view) addrOf(name string) (netip.AddrPort, bool) {
	p, ok := v.nodes[name]
	if !ok || !p.state.Alive() || !p.addr.IsValid() {
		return netip.AddrPort{}, false
	}
	return p.addr, true
}

// isGone reports whether the named incarnation of a node can no longer send:
// it left or failed, or it was replaced by a newer incarnation.
func (v *view) isGone(name string, boot uint64) bool {
	p, ok := v.nodes[name]
	if !ok {
		return false // not known yet: it may be joining
	}
	if p.boot != boot && p.boot != 0 {
		return true
	}
	return !p.state.Alive()
}
