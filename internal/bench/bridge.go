package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// bridgeBus is what the harness needs of a bridge bus.
type bridgeBus interface {
	syncbus.Bus
	syncbus.PrefixSubscriber
	syncbus.MetricsReporter
	WaitForMembers(ctx context.Context, n int) error
	Close() error
}

// bridgeNode is one node of a bridge cluster: its bus and what closes the
// client made for it after the bus (a bridge never closes its client).
type bridgeNode struct {
	bus   bridgeBus
	close func()
	open  bool
}

// bridgeTarget is five bridge nodes on one broker, in the mesh's zones
// (2+2+1, the publisher first), sealing their frames with a secret key
// under a label, as the mesh does: the same frames as the mesh.
type bridgeTarget struct {
	keys     *keySet
	nodes    []*bridgeNode
	recv     []*receiver
	wg       sync.WaitGroup
	cpuScope string
	extra    func() time.Duration
}

// bridgeSecret is the key every bridge node seals its frames with.
func bridgeSecret() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms.
	return k
}

// startBridge builds the cluster with newNode (the node's name and zone)
// and waits until every node knows the others.
func startBridge(ctx context.Context, keys *keySet, cpuScope string,
	newNode func(name, zone string) (*bridgeNode, error)) (*bridgeTarget, error) {
	t := &bridgeTarget{keys: keys, cpuScope: cpuScope, extra: func() time.Duration { return 0 }}
	for _, n := range meshNodes {
		node, err := newNode(n.name, n.zone)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
		node.open = true
		t.nodes = append(t.nodes, node)
	}
	for i, n := range t.nodes {
		if err := n.bus.WaitForMembers(ctx, len(t.nodes)); err != nil {
			t.close()
			return nil, fmt.Errorf("node %s: %w", meshNodes[i].name, err)
		}
	}
	for _, n := range t.nodes[1:] {
		ch, err := n.bus.SubscribePrefix(context.Background(), "")
		if err != nil {
			t.close()
			return nil, err
		}
		rc := newReceiver()
		t.recv = append(t.recv, rc)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			consume(ch, rc)
		}()
	}
	return t, nil
}

func (t *bridgeTarget) info() targetInfo {
	return targetInfo{
		eventual: "Publish, until 4 subscriptions have it",
		await:    "PublishAndAwait(4)",
		topology: "PublishAndAwaitTopology(3)",
		floods:   true,
		cpuScope: t.cpuScope,
	}
}

func (t *bridgeTarget) receivers() []*receiver { return t.recv }
func (t *bridgeTarget) pub() bridgeBus         { return t.nodes[0].bus }

func (t *bridgeTarget) publish(ctx context.Context, i int) error {
	return t.pub().Publish(ctx, t.keys.key(i))
}

func (t *bridgeTarget) await(ctx context.Context, i int) error {
	return t.pub().PublishAndAwait(ctx, t.keys.key(i), 4)
}

func (t *bridgeTarget) topology(ctx context.Context, i int) error {
	return t.pub().PublishAndAwaitTopology(ctx, t.keys.key(i), 3)
}

func (t *bridgeTarget) flood(ctx context.Context, from, n int) (int, error) {
	return floodBus(ctx, t.pub(), t.keys, from, n)
}

func (t *bridgeTarget) traffic() traffic {
	mt := t.pub().Metrics()
	return traffic{bytes: mt.SentLocal.Bytes + mt.SentRemote.Bytes, msgs: mt.SentLocal.Messages + mt.SentRemote.Messages}
}

// shrink closes the last two nodes: a plain publish needs no members, so
// the burst to 2 does not wait for the others to notice.
func (t *bridgeTarget) shrink(context.Context) error {
	for _, n := range t.nodes[3:] {
		t.closeNode(n)
	}
	return nil
}

func (t *bridgeTarget) closeNode(n *bridgeNode) {
	if !n.open {
		return
	}
	n.open = false
	_ = n.bus.Close() // closes its subscriptions, which ends their readers
	if n.close != nil {
		n.close()
	}
}

func (t *bridgeTarget) extraCPU() time.Duration { return t.extra() }

func (t *bridgeTarget) close() {
	for _, n := range t.nodes {
		t.closeNode(n)
	}
	t.wg.Wait()
}
