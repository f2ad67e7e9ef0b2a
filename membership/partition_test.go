package membership

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/syncbus"
)

// partition is a switchable network split between two sides. While split,
// nothing crosses from one side to the other: packets and datagrams are
// lost, and connections are refused.
type partition struct {
	mu    sync.Mutex
	side  map[netip.AddrPort]int
	split bool
}

func (p *partition) cut(from, to netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.split && p.side[from] != p.side[to]
}

func (p *partition) set(split bool) {
	p.mu.Lock()
	p.split = split
	p.mu.Unlock()
}

var errPartitioned = errors.New("partitioned")

// cutTransport is a NetTransport behind a partition.
type cutTransport struct {
	*NetTransport
	p *partition
}

var _ Transport = (*cutTransport)(nil)

func (c *cutTransport) blocked(addr string) bool {
	to, err := netip.ParseAddrPort(addr)
	return err == nil && c.p.cut(c.Addr(), to)
}

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return c.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (c *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if c.blocked(a.Addr) {
		return time.Now(), nil // lost on the way
	}
	return c.NetTransport.WriteToAddress(b, a)
}

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return c.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (c *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.blocked(a.Addr) {
		return nil, errPartitioned
	}
	return c.NetTransport.DialAddressTimeout(a, timeout)
}

func (c *cutTransport) SendDatagram(addr netip.AddrPort, b []byte) error {
	if c.p.cut(c.Addr(), addr) {
		return nil
	}
	return c.NetTransport.SendDatagram(addr, b)
}

// forgets reports whether memberlist itself has forgotten every named node
// (after GossipToTheDeadTime), so that only rejoining can bring them back.
func forgets(m *Membership, names ...string) bool {
	for _, name := range names {
		if _, known := m.state.get(name); known {
			return false
		}
	}
	return true
}

func TestPartitionHealsByItself(t *testing.T) {
	// Every node's seed is a name that resolves to a0. "seeds": the name
	// keeps resolving, so the B half heals by rejoining its seed.
	// "failed members": the name stops resolving once the cluster has
	// formed, so only rejoining the failed members' addresses can heal.
	for _, via := range []string{"seeds", "failed members"} {
		t.Run(via, func(t *testing.T) { testPartitionHeals(t, via == "seeds") })
	}
}

func testPartitionHeals(t *testing.T, viaSeeds bool) {
	p := &partition{side: make(map[netip.AddrPort]int)}
	var dnsDown atomic.Bool
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if dnsDown.Load() || host != "seed.test" {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	var nodes []*Membership
	for i, name := range []string{"a0", "a1", "a2", "b0", "b1", "b2"} {
		nt := newTestTransport(t, nil)
		p.side[nt.Addr()] = i / 3
		c := testConfig(name)
		c.Transport = &cutTransport{NetTransport: nt, p: p}
		c.lookup = lookup
		if i > 0 {
			c.Seeds = []string{"seed.test:" + strconv.Itoa(int(nodes[0].Local().Addr.Port()))}
		}
		nodes = append(nodes, startNode(t, c))
	}
	waitConverged(t, nodes, 20*time.Second)
	if !viaSeeds {
		dnsDown.Store(true)
	}
	a, b := nodes[:3], nodes[3:]

	p.set(true)
	splitAt := time.Now()
	// Split until memberlist on each side has forgotten the other.
	eventually(t, 30*time.Second, func() bool {
		for _, n := range a {
			if !sees(n, syncbus.MemberFailed, names(b)...) || !forgets(n, names(b)...) {
				return false
			}
		}
		for _, n := range b {
			if !sees(n, syncbus.MemberFailed, names(a)...) || !forgets(n, names(a)...) {
				return false
			}
		}
		return true
	}, "halves did not split and forget each other:%s", describe(nodes))
	before := uint64(0)
	for _, n := range nodes {
		before += n.Stats().Rejoined
	}

	p.set(false)
	healedAt := time.Now()
	waitConverged(t, nodes, 30*time.Second)
	t.Logf("split for %v; merged %v after the network healed", healedAt.Sub(splitAt).Round(time.Millisecond), time.Since(healedAt).Round(time.Millisecond))
	// The merge came from rejoining: memberlist alone never contacts a
	// node it has forgotten.
	eventually(t, 5*time.Second, func() bool {
		after := uint64(0)
		for _, n := range nodes {
			after += n.Stats().Rejoined
		}
		return after > before
	}, "merged without a rejoin")
}
