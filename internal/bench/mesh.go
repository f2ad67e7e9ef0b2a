package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// meshNodes is the cluster of the mesh rows: zones 2+2+1, the publisher
// (first) in a two-node zone. The last two leave for the burst to 2.
var meshNodes = []struct{ name, zone string }{
	{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"b2", "b"}, {"c1", "c"},
}

// meshTarget is a five-node mesh on 127.0.0.1, real UDP, default options
// with encryption on.
type meshTarget struct {
	keys  *keySet
	buses []*mesh.MeshBus // publisher first
	open  []bool
	recv  []*receiver
	wg    sync.WaitGroup // subscription readers
}

func startMesh(ctx context.Context, keys *keySet) (*meshTarget, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails on supported platforms.
	m := &meshTarget{keys: keys}
	for _, n := range meshNodes {
		o := mesh.DefaultMeshOptions()
		o.NodeName, o.Zone, o.Region = n.name, n.zone, "r1"
		o.BindAddr, o.Port, o.Label = "127.0.0.1", -1, "warp-bench"
		o.SecretKeys = [][]byte{secret}
		// Every node joins every node started before it.
		for _, prev := range m.buses {
			o.Peers = append(o.Peers, prev.Addr().String())
		}
		b, err := mesh.NewMeshBus(o)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
		m.buses, m.open = append(m.buses, b), append(m.open, true)
	}
	for _, b := range m.buses {
		if err := b.WaitForMembers(ctx, len(m.buses)); err != nil {
			m.close()
			return nil, fmt.Errorf("node %s: %w", b.Name(), err)
		}
	}
	for _, b := range m.buses[1:] {
		ch, err := b.SubscribePrefix(context.Background(), "")
		if err != nil {
			m.close()
			return nil, err
		}
		rc := newReceiver()
		m.recv = append(m.recv, rc)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			consume(ch, rc)
		}()
	}
	return m, nil
}

// consume hands every event of a subscription to rc until the channel
// closes (its bus closed).
func consume(ch <-chan syncbus.Event, rc *receiver) {
	for ev := range ch {
		if ev.Op == syncbus.OpResync {
			rc.resync()
			continue
		}
		rc.deliver(ev.Key)
	}
}

func (m *meshTarget) info() targetInfo {
	return targetInfo{
		eventual: "Publish, until 4 subscriptions have it",
		await:    "PublishAndAwait(4)",
		topology: "PublishAndAwaitTopology(3)",
		floods:   true,
		cpuScope: "this process: the 5 nodes and the harness",
	}
}

func (m *meshTarget) receivers() []*receiver { return m.recv }
func (m *meshTarget) pub() *mesh.MeshBus     { return m.buses[0] }

func (m *meshTarget) publish(ctx context.Context, i int) error {
	return m.pub().Publish(ctx, m.keys.key(i))
}

func (m *meshTarget) await(ctx context.Context, i int) error {
	return m.pub().PublishAndAwait(ctx, m.keys.key(i), 4)
}

func (m *meshTarget) topology(ctx context.Context, i int) error {
	return m.pub().PublishAndAwaitTopology(ctx, m.keys.key(i), 3)
}

func (m *meshTarget) flood(ctx context.Context, from, n int) (int, error) {
	return floodBus(ctx, m.pub(), m.keys, from, n)
}

// floodBus publishes keys [from, from+n) on b as fast as it can.
func floodBus(ctx context.Context, b syncbus.Bus, keys *keySet, from, n int) (refused int, err error) {
	for i := from; i < from+n; i++ {
		if err := b.Publish(ctx, keys.key(i)); err != nil {
			switch {
			case ctx.Err() != nil:
				return refused, ctx.Err()
			case errors.Is(err, syncbus.ErrBackpressure):
				refused++
			default:
				return refused, fmt.Errorf("publish %d: %w", i-from, err)
			}
		}
	}
	return refused, nil
}

func (m *meshTarget) traffic() traffic {
	mt := m.pub().Metrics()
	return traffic{bytes: mt.SentLocal.Bytes + mt.SentRemote.Bytes, msgs: mt.SentLocal.Messages + mt.SentRemote.Messages}
}

func (m *meshTarget) shrink(ctx context.Context) error {
	for i := 3; i < len(m.buses); i++ {
		if err := m.buses[i].Close(); err != nil {
			return err
		}
		m.open[i] = false
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := 0
		for _, mb := range m.pub().Members() {
			if mb.State.Alive() {
				alive++
			}
		}
		if alive == 3 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the publisher still sees %d alive nodes of 3: %w", alive, ctx.Err())
		case <-tick.C:
		}
	}
}

func (m *meshTarget) extraCPU() time.Duration { return 0 }

func (m *meshTarget) close() {
	for i, b := range m.buses {
		if m.open[i] {
			_ = b.Close() // closes its subscriptions, which ends their readers
		}
	}
	m.wg.Wait()
}

// metrics returns the publisher's counters.
func (m *meshTarget) metrics() syncbus.Metrics { return m.pub().Metrics() }

func (r *runner) runMesh(ctx context.Context, rep *Report, _ func(string) bool) {
	s := &System{ID: Mesh, Name: systemNames[Mesh]}
	rep.add(s)
	r.progress("mesh: starting 5 nodes")
	sctx, cancel := r.bound(ctx, r.sz.setup)
	m, err := startMesh(sctx, r.keys)
	cancel()
	if err != nil {
		s.fail("start", err)
		return
	}
	defer func() {
		r.progress("mesh: stopping")
		m.close()
	}()
	before := m.metrics()
	r.measure(ctx, s, m)
	after := m.metrics()
	s.note("publisher over the run: %d flow-control stalls (%v), %d receivers released, %d retransmits; receivers' resyncs are in the burst rows",
		after.FlowStalls-before.FlowStalls, (after.FlowStallTime - before.FlowStallTime).Round(time.Millisecond),
		after.FlowReleased-before.FlowReleased, after.Retransmits-before.Retransmits)
}
