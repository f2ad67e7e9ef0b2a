package protocol

import (
	"net/netip"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/zones"
)

// Member is one node of the membership as the caller knows it.
type Member struct {
	Name, Zone, Region string
	// Addr is where the node's frames go.
	Addr netip.AddrPort
	// Boot is the node's incarnation: a node restarted under the same name
	// comes back with another Boot.
	Boot uint64
	// State is alive, suspect (which counts as alive), left or failed.
	State syncbus.MemberState
	// Started is when this incarnation started, by its own clock; zero
	// when unknown.
	Started time.Time
}

// peer is one other node as the protocol sees it.
type peer struct {
	Member
	// joinSeq is the number after which the peer is owed every event of
	// this node: this node's last number before the peer started, as far
	// as the repair ring reaches back (see Core.joinPoint), or when it
	// entered the view. The digests it gets say so, and it repairs the
	// rest — events this node published while it did not know the peer.
	joinSeq uint64
	// arrived marks a peer that became alive with this view: new, back
	// after a failure, or restarted; fresh one that is a new incarnation.
	arrived, fresh bool
}

// view is the membership at one moment: the topology for planning and
// counting acks, and the addresses.
type view struct {
	topo *zones.Topology
	mode zones.Mode
	// nodes holds every known member by name, this node included.
	nodes map[string]*peer
	// byAddr maps the addresses of the known members, to recognise
	// senders.
	byAddr map[netip.AddrPort]*peer
	// alive lists the other alive (or suspect) nodes, by name.
	alive []*peer
}

// newView builds the view of members. prev is the view it replaces (nil
// for the first) and seq this node's last number now.
func newView(self Member, members []Member, fanout Fanout, relayThreshold int, prev *view, seq uint64) (*view, error) {
	v := &view{
		nodes:  make(map[string]*peer, len(members)+1),
		byAddr: make(map[netip.AddrPort]*peer, len(members)),
	}
	list := make([]syncbus.Member, 0, len(members)+1)
	add := func(m Member) {
		alive := m.State.Alive()
		p := &peer{Member: m, joinSeq: seq, arrived: alive, fresh: alive}
		if prev != nil {
			if old, ok := prev.nodes[m.Name]; ok && old.Boot == m.Boot {
				// The same incarnation: it keeps where its window started,
				// even across a failure and its return.
				p.joinSeq, p.fresh = old.joinSeq, false
				p.arrived = alive && !old.State.Alive()
			}
		}
		v.nodes[m.Name] = p
		list = append(list, syncbus.Member{Name: m.Name, Zone: m.Zone, Region: m.Region, Addr: m.Addr.String(), State: m.State})
	}
	add(self)
	for _, m := range members {
		if m.Name == self.Name {
			continue // the caller's own entry; ours is authoritative
		}
		add(m)
		p := v.nodes[m.Name]
		if m.Addr.IsValid() {
			if old, ok := v.byAddr[m.Addr]; !ok || !old.State.Alive() {
				v.byAddr[m.Addr] = p
			}
		}
		if m.State.Alive() {
			v.alive = append(v.alive, p)
		}
	}
	topo, err := zones.New(self.Name, list)
	if err != nil {
		return nil, err
	}
	v.topo = topo
	v.mode = zones.ModeDirect
	switch fanout {
	case FanoutRelay:
		v.mode = zones.ModeRelay
	case FanoutAuto:
		if topo.Size() > relayThreshold {
			v.mode = zones.ModeRelay
		}
	}
	return v, nil
}

// addrOf returns the address of an alive node.
func (v *view) addrOf(name string) (netip.AddrPort, bool) {
	p, ok := v.nodes[name]
	if !ok || !p.State.Alive() || !p.Addr.IsValid() {
		return netip.AddrPort{}, false
	}
	return p.Addr, true
}

// bootOf returns the incarnation of an alive node.
func (v *view) bootOf(name string) (uint64, bool) {
	p, ok := v.nodes[name]
	if !ok || !p.State.Alive() {
		return 0, false
	}
	return p.Boot, true
}

// isGone reports whether the named incarnation of a node can no longer
// send: it left or failed, or it was replaced by a newer incarnation.
func (v *view) isGone(name string, boot uint64) bool {
	p, ok := v.nodes[name]
	if !ok {
		return false // not known yet: it may be joining
	}
	if p.Boot != boot && p.Boot != 0 {
		return true
	}
	return !p.State.Alive()
}
