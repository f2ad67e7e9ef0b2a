package membership

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/wire"
)

// TestKeyRotationKeepsClusterWhole rotates the cluster key on a running
// encrypted cluster the documented way (add everywhere, make primary
// everywhere, remove the old one everywhere) and checks that nobody is
// declared failed, that the new key is in force and the old one is not.
func TestKeyRotationKeepsClusterWhole(t *testing.T) {
	oldKey, newKey := randomKey(t), randomKey(t)
	rings := make([]*wire.Keyring, 3)
	nodes := startCluster(t, "k", 3, func(i int, c *Config) {
		kr, err := wire.NewKeyring(oldKey)
		if err != nil {
			t.Fatal(err)
		}
		rings[i], c.Keyring = kr, kr
	})
	waitConverged(t, nodes, 15*time.Second)
	var logs []*eventLog
	for _, n := range nodes {
		logs = append(logs, watchEvents(n))
	}

	step := func(name string, do func(*wire.Keyring) error) {
		for i, kr := range rings {
			if err := do(kr); err != nil {
				t.Fatalf("%s on %s: %v", name, nodes[i].Name(), err)
			}
		}
		// Let some gossip run under the new state before the next step.
		polls := nodes[0].polls.Load()
		warptest.Eventually(t, 10*time.Second, func() bool { return nodes[0].polls.Load() >= polls+4 }, "%s: the node stopped", name)
		waitConverged(t, nodes, 10*time.Second)
	}
	step("add", func(kr *wire.Keyring) error { return kr.AddKey(newKey) })
	step("use", func(kr *wire.Keyring) error { return kr.UseKey(newKey) })
	step("remove", func(kr *wire.Keyring) error { return kr.RemoveKey(oldKey) })

	for i, n := range nodes {
		checkRing(t, n.Name(), n.keys.dst, newKey)
		if f := logs[i].count(EventFailed, ""); f > 0 {
			t.Errorf("%s declared %d nodes failed during the rotation", n.Name(), f)
		}
	}

	// The new key lets a node in; the old one does not any more.
	join := func(name string, key []byte) *Membership {
		kr, _ := wire.NewKeyring(key)
		c := testConfig(name)
		c.Keyring = kr
		c.Seeds = []string{nodes[0].Local().Addr.String()}
		return startNode(t, c)
	}
	fresh := join("fresh", newKey)
	waitConverged(t, append(nodes, fresh), 15*time.Second)
	stale := join("stale", oldKey)
	warptest.Eventually(t, 15*time.Second, func() bool { return stale.Stats().JoinFailures >= 3 },
		"the stale node's join was not retried: %+v", stale.Stats())
	for _, n := range append(nodes, fresh) {
		if _, ok := n.Snapshot().Lookup("stale"); ok {
			t.Errorf("%s let in a node with the removed key", n.Name())
		}
	}
}
