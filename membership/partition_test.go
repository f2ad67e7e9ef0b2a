package membership_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/internal/warptest/nettest"
	"github.com/warpmesh/warp/membership"
)

func TestPartitionHealsByItself(t *testing.T) {
	// Every node's seed is a name that resolves to a0. "seeds": the name
	// keeps resolving, so the B half heals by rejoining its seed.
	// "failed members": the name stops resolving once the cluster has
	// formed, so only rejoining the failed members' addresses can heal.
	for _, via := range []string{"seeds", "failed members"} {
		t.Run(via, func(t *testing.T) { testPartitionHeals(t, via == "seeds") })
	}
}

// testPartitionHeals splits six nodes in two halves with the test kit's
// partition rule — packets, streams and datagrams alike — until each half
// has forgotten the other, then heals the network.
func testPartitionHeals(t *testing.T, viaSeeds bool) {
	rules := faults.New(1)
	var dnsDown atomic.Bool
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if dnsDown.Load() || host != "seed.test" {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	var nodes []*membership.Membership
	var sides [2][]netip.AddrPort
	for i, name := range []string{"a0", "a1", "a2", "b0", "b1", "b2"} {
		tr, err := nettest.Listen(rules, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		sides[i/3] = append(sides[i/3], tr.Addr())
		c := membership.FastConfig(name)
		c.Transport = tr
		membership.SetLookup(&c, lookup)
		if i > 0 {
			c.Seeds = []string{"seed.test:" + strconv.Itoa(int(nodes[0].Local().Addr.Port()))}
		}
		nodes = append(nodes, membership.StartNode(t, c))
	}
	membership.WaitConverged(t, nodes, 20*time.Second)
	if !viaSeeds {
		dnsDown.Store(true)
	}
	a, b := nodes[:3], nodes[3:]

	split := rules.Partition(sides[0], sides[1], false)
	splitAt := time.Now()
	// Split until memberlist on each side has forgotten the other.
	warptest.Eventually(t, 30*time.Second, func() bool {
		for _, n := range a {
			if !membership.SeesFailed(n, membership.Names(b)...) || !membership.Forgets(n, membership.Names(b)...) {
				return false
			}
		}
		for _, n := range b {
			if !membership.SeesFailed(n, membership.Names(a)...) || !membership.Forgets(n, membership.Names(a)...) {
				return false
			}
		}
		return true
	}, "halves did not split and forget each other:%s", func() string { return membership.Describe(nodes) })
	before := uint64(0)
	for _, n := range nodes {
		before += n.Stats().Rejoined
	}

	split.Remove()
	healedAt := time.Now()
	membership.WaitConverged(t, nodes, 30*time.Second)
	t.Logf("split for %v; merged %v after the network healed", healedAt.Sub(splitAt).Round(time.Millisecond), time.Since(healedAt).Round(time.Millisecond))
	// The merge came from rejoining: memberlist alone never contacts a
	// node it has forgotten.
	warptest.Eventually(t, 5*time.Second, func() bool {
		after := uint64(0)
		for _, n := range nodes {
			after += n.Stats().Rejoined
		}
		return after > before
	}, "merged without a rejoin")
}
