package sim

import (
	"net/netip"
	"sync"
	"time"

	"github.com/warpmesh/warp/internal/faults"
)

// Match selects the datagrams (and streams) a rule applies to: every
// non-empty field must match. Addresses are hosts' (Host.Addr).
type Match = faults.Match

// Packet is what a Hook sees of one datagram or stream.
type Packet = faults.Packet

// Verdict is a Hook's decision on one packet. Its Delay is in simulated
// time.
type Verdict = faults.Verdict

// Rule is an installed rule; Remove uninstalls it.
type Rule = faults.Handle

// DataFrames matches the data plane's frames only, not gossip.
func DataFrames() Match { return faults.Data() }

// The network's fault rules come on top of its links: they are applied,
// in the order they were added, to every datagram before its link, and to
// every stream when it is dialled (a dropped stream is a refused
// connection). Each link draws from its own random stream, derived from
// the seed, so a rule drops the same datagrams of a link in every run.
// Delays are in simulated time.

// Drop loses each matching datagram with probability rate (1: all).
func (n *Network) Drop(rate float64, m Match) *Rule { return n.rules.Drop(rate, m) }

// Delay holds each matching datagram back by d plus a uniform jitter in
// [0, jitter).
func (n *Network) Delay(d, jitter time.Duration, m Match) *Rule { return n.rules.Delay(d, jitter, m) }

// Duplicate sends an extra copy of each matching datagram with
// probability rate.
func (n *Network) Duplicate(rate float64, m Match) *Rule { return n.rules.Duplicate(rate, m) }

// Reorder holds back a fraction rate of the matching datagrams by d, so
// that later ones overtake them.
func (n *Network) Reorder(rate float64, d time.Duration, m Match) *Rule {
	return n.rules.Reorder(rate, d, m)
}

// Hook installs a rule of the caller's: f sees each matching packet and
// returns its verdict. f is called with the rules' lock held: it must be
// quick and must not install or remove rules; it may crash or pause a
// host.
func (n *Network) Hook(m Match, f func(Packet) Verdict) *Rule { return n.rules.Hook(m, f) }

// Partition is a cut between two sets of hosts.
type Partition struct {
	n      *Network
	a, b   map[*Host]bool
	oneWay bool
	rule   *faults.Handle
	once   sync.Once
}

// Partition cuts every link between a host of a and a host of b — both
// ways, or only from a to b when oneWay — and breaks the streams that
// cross it. An empty b means every other host of the network now. The
// cut lasts until Heal.
func (n *Network) Partition(a, b []*Host, oneWay bool) *Partition {
	p := &Partition{n: n, a: make(map[*Host]bool, len(a)), b: make(map[*Host]bool), oneWay: oneWay}
	for _, h := range a {
		p.a[h] = true
	}
	if len(b) == 0 {
		for _, h := range n.Hosts() {
			if !p.a[h] {
				b = append(b, h)
			}
		}
	}
	for _, h := range b {
		p.b[h] = true
	}
	aa, bb := make([]netip.AddrPort, 0, len(a)), make([]netip.AddrPort, 0, len(b))
	for _, h := range a {
		aa = append(aa, h.addr)
	}
	for _, h := range b {
		bb = append(bb, h.addr)
	}
	n.mu.Lock()
	n.parts = append(n.parts, p)
	n.mu.Unlock()
	p.rule = n.rules.Partition(aa, bb, oneWay)
	n.resetStreams(func(s *stream) bool { return p.cuts(s.from, s.to) || p.cuts(s.to, s.from) })
	return p
}

// PartitionZones cuts the hosts of zones a from those of zones b (every
// other zone when b is empty).
func (n *Network) PartitionZones(a, b []string, oneWay bool) *Partition {
	var hb []*Host
	if len(b) > 0 {
		hb = n.ZoneHosts(b...)
	}
	return n.Partition(n.ZoneHosts(a...), hb, oneWay)
}

// cuts reports whether the partition cuts the direction x to y.
func (p *Partition) cuts(x, y *Host) bool {
	return (p.a[x] && p.b[y]) || (!p.oneWay && p.b[x] && p.a[y])
}

// Heal removes the cut. Healing twice is harmless.
func (p *Partition) Heal() {
	p.once.Do(func() {
		p.rule.Remove()
		p.n.mu.Lock()
		for i, q := range p.n.parts {
			if q == p {
				p.n.parts = append(p.n.parts[:i], p.n.parts[i+1:]...)
				break
			}
		}
		p.n.mu.Unlock()
	})
}

// partitioned reports whether a partition cuts the direction x to y.
func (n *Network) partitioned(x, y *Host) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.parts {
		if p.cuts(x, y) {
			return true
		}
	}
	return false
}
