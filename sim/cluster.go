package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// Label is the cluster label of every simulated cluster.
const Label = "sim"

// NodeSpec names one node of a cluster and places it.
type NodeSpec struct {
	Name, Zone, Region string
}

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	// Nodes are the cluster's nodes, each on a host of its own.
	Nodes []NodeSpec
	// Seed fixes the network's random choices and the cluster's key.
	Seed uint64
	// TimeScale is the nodes' and the network's (0: AutoScale of the
	// number of nodes).
	TimeScale float64
	// Intra and Inter are the default links within and between zones;
	// Links sets the links of given zone pairs.
	Intra, Inter Link
	Links        []ZoneLink
	// Profile is the nodes' failure-detection profile (default "lan");
	// Heartbeat overrides its probe interval (MeshOptions.Heartbeat), in
	// simulated time.
	Profile   string
	Heartbeat time.Duration
	// Fanout is the nodes' fanout mode.
	Fanout mesh.FanoutMode
	// Options, if not nil, has the last word on node i's options (Name,
	// Zone, Transport, Peers, TimeScale and keys are set already).
	Options func(i int, o *mesh.MeshOptions)
	// Logger receives the nodes' logs (default: discarded).
	Logger *slog.Logger
}

// ZoneLink sets the links between two zones, both ways (one zone named
// twice: the link within it).
type ZoneLink struct {
	A, B string
	Link Link
}

// AutoScale is the TimeScale a simulation of n nodes runs with unless told
// otherwise: 1 up to 40 nodes, then one more per 40 nodes (25 for a
// thousand), so that a thousand nodes on two cores do not starve
// memberlist's probes nor overflow their receive queues. Under the race
// detector, which slows everything several times, it is four times as
// large.
func AutoScale(n int) float64 {
	s := math.Max(1, float64(n)/40)
	if raceEnabled {
		s *= 4
	}
	return s
}

// Cluster is a set of real MeshBuses on a simulated network. Start it
// with NewCluster; Close stops everything it started.
//
// A Cluster is safe for concurrent use.
type Cluster struct {
	net   *Network
	cfg   ClusterConfig
	key   []byte
	nodes []*Node
	hubs  []*Node

	bg sync.WaitGroup // closes of crashed nodes' buses

	closeOnce sync.Once
}

// Node is one node of a Cluster: its host, and the bus running on it
// (none while crashed).
type Node struct {
	c      *Cluster
	index  int
	spec   NodeSpec
	host   *Host
	mu     sync.Mutex
	bus    *mesh.MeshBus
	starts int
}

// Index returns the node's position in ClusterConfig.Nodes.
func (n *Node) Index() int { return n.index }

// Name returns the node's name.
func (n *Node) Name() string { return n.spec.Name }

// Zone returns the node's zone.
func (n *Node) Zone() string { return n.spec.Zone }

// Host returns the node's host.
func (n *Node) Host() *Host { return n.host }

// Bus returns the node's running bus, or nil while it is crashed.
func (n *Node) Bus() *mesh.MeshBus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bus
}

// NewCluster builds the network, starts one MeshBus per node and returns
// once every node sees every other one alive, or ctx ends.
//
// The bootstrap is quick at any size: a few hubs (one node per zone, at
// most five) start first and join each other; then every other node
// starts with the hubs as its seeds. Each state exchange a newcomer opens
// with a hub carries the newcomer to the hub, but while nodes are still
// starting the hub's answer is held back and the newcomer retries, so
// that the hubs come to know everyone; then the answers flow, and each
// newcomer's next try brings it the whole cluster in one exchange. It
// relies on memberlist answering a state exchange before merging what it
// received, and merging only once its answer went out; should that
// change, the nodes still converge, by gossip, only more slowly.
func NewCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("sim: a cluster needs nodes")
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = AutoScale(len(cfg.Nodes))
	}
	if cfg.Profile == "" {
		cfg.Profile = "lan"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	key := make([]byte, 32)
	krng := rand.New(rand.NewPCG(cfg.Seed, 0x6b6579)) // "key"
	for i := range key {
		key[i] = byte(krng.Uint32())
	}
	queue := DefaultHostQueue
	if len(cfg.Nodes) > 100 {
		// Relay fanout keeps each node's bursts small in a large
		// cluster, and a full-size queue per host would cost more
		// memory than the nodes themselves.
		queue = 2048
	}
	net, err := New(Config{
		Seed: cfg.Seed, TimeScale: cfg.TimeScale,
		Intra: cfg.Intra, Inter: cfg.Inter, HostQueue: queue,
		Keys: [][]byte{key}, Label: Label,
	})
	if err != nil {
		return nil, err
	}
	c := &Cluster{net: net, cfg: cfg, key: key}
	for i, spec := range cfg.Nodes {
		h, err := net.AddHost(spec.Name, spec.Zone)
		if err != nil {
			_ = net.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, &Node{c: c, index: i, spec: spec, host: h})
	}
	for _, l := range cfg.Links {
		if err := net.SetLinks(l.A, l.B, l.Link); err != nil {
			_ = net.Close()
			return nil, err
		}
	}
	if err := c.bootstrap(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Network returns the cluster's network.
func (c *Cluster) Network() *Network { return c.net }

// Nodes returns the nodes, in the order of ClusterConfig.Nodes.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns node i.
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// NodeNamed returns the node named name, or nil.
func (c *Cluster) NodeNamed(name string) *Node {
	for _, n := range c.nodes {
		if n.spec.Name == name {
			return n
		}
	}
	return nil
}

// Key returns the cluster's secret key (derived from the seed).
func (c *Cluster) Key() []byte { return c.key }

// Buses returns the running buses (crashed nodes have none).
func (c *Cluster) Buses() []*mesh.MeshBus {
	var out []*mesh.MeshBus
	for _, n := range c.nodes {
		if b := n.Bus(); b != nil {
			out = append(out, b)
		}
	}
	return out
}

// hubAddrs are the seeds every node joins.
func (c *Cluster) hubAddrs() []string {
	out := make([]string, 0, len(c.hubs))
	for _, h := range c.hubs {
		out = append(out, h.host.addr.String())
	}
	return out
}

// options returns node n's options for a start on endpoint ep.
func (c *Cluster) options(n *Node, ep *Endpoint) mesh.MeshOptions {
	o := mesh.MeshOptions{
		NodeName:   n.spec.Name,
		Zone:       n.spec.Zone,
		Region:     n.spec.Region,
		Label:      Label,
		SecretKeys: [][]byte{c.key},
		Profile:    c.cfg.Profile,
		Heartbeat:  c.cfg.Heartbeat,
		Fanout:     c.cfg.Fanout,
		TimeScale:  c.cfg.TimeScale,
		Transport:  ep,
		Peers:      c.hubAddrs(),
		Logger:     c.cfg.Logger,
		// No gateway relays into a simulated cluster: a small window
		// saves memory at a thousand nodes.
		DedupeWindow: 256,
	}
	if c.cfg.Options != nil {
		c.cfg.Options(n.index, &o)
	}
	return o
}

// start starts a bus on node n's host.
func (c *Cluster) start(n *Node) (*mesh.MeshBus, error) {
	ep, err := n.host.Listen()
	if err != nil {
		return nil, fmt.Errorf("sim: node %s: %w", n.spec.Name, err)
	}
	b, err := mesh.NewMeshBus(c.options(n, ep))
	if err != nil {
		_ = ep.Shutdown()
		return nil, fmt.Errorf("sim: node %s: %w", n.spec.Name, err)
	}
	n.mu.Lock()
	n.bus = b
	n.starts++
	n.mu.Unlock()
	return b, nil
}

// gateFrom is the cluster size from which the bootstrap steers the
// state exchanges (bootGate); smaller clusters converge by gossip at once.
const gateFrom = 24

func (c *Cluster) bootstrap(ctx context.Context) error {
	c.hubs = pickHubs(c.nodes)
	for _, h := range c.hubs {
		if _, err := c.start(h); err != nil {
			return err
		}
	}
	if err := c.waitKnown(ctx, c.hubs, c.hubs); err != nil {
		return fmt.Errorf("sim: hubs: %w", err)
	}
	isHub := make(map[*Node]bool, len(c.hubs))
	var hubHosts, restHosts []*Host
	for _, h := range c.hubs {
		isHub[h] = true
		hubHosts = append(hubHosts, h.host)
	}
	var rest []*Node
	for _, n := range c.nodes {
		if !isHub[n] {
			rest = append(rest, n)
			restHosts = append(restHosts, n.host)
		}
	}
	var gate *bootGate
	if len(c.nodes) >= gateFrom {
		gate = newBootGate(hubHosts, restHosts)
		c.net.boot.Store(gate)
		defer c.net.boot.Store(nil)
	}
	for _, n := range rest {
		if _, err := c.start(n); err != nil {
			return err
		}
	}
	if gate != nil {
		if err := c.waitKnown(ctx, c.hubs, rest); err != nil {
			return fmt.Errorf("sim: bootstrap: %w", err)
		}
		gate.startPull()
	}
	return c.WaitConverged(ctx)
}

// pickHubs chooses the bootstrap's hubs: the first node of each zone, at
// most five, and more nodes of the first zones when there are fewer than
// three zones.
func pickHubs(nodes []*Node) []*Node {
	const maxHubs, minHubs = 5, 3
	var hubs []*Node
	seen := map[string]bool{}
	for _, n := range nodes {
		if !seen[n.spec.Zone] && len(hubs) < maxHubs {
			seen[n.spec.Zone] = true
			hubs = append(hubs, n)
		}
	}
	for _, n := range nodes {
		if len(hubs) >= minHubs {
			break
		}
		dup := false
		for _, h := range hubs {
			dup = dup || h == n
		}
		if !dup {
			hubs = append(hubs, n)
		}
	}
	return hubs
}

// waitKnown waits until every node of who sees every node of whom alive.
func (c *Cluster) waitKnown(ctx context.Context, who, whom []*Node) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := ""
		for _, w := range who {
			b := w.Bus()
			if b == nil {
				continue
			}
			snap := b.Membership().Snapshot()
			for _, x := range whom {
				if m, ok := snap.Lookup(x.spec.Name); !ok || !m.State.Alive() {
					missing = w.spec.Name + " does not see " + x.spec.Name
					break
				}
			}
			if missing != "" {
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitConverged waits until every running node sees every other running
// node alive, and every node's fanout knows them (WaitForMembers).
func (c *Cluster) WaitConverged(ctx context.Context) error {
	var up []*Node
	for _, n := range c.nodes {
		if n.Bus() != nil && !n.host.Paused() {
			up = append(up, n)
		}
	}
	if err := c.waitKnown(ctx, up, up); err != nil {
		return err
	}
	for _, n := range up {
		if b := n.Bus(); b != nil {
			if err := b.WaitForMembers(ctx, len(up)); err != nil && !errors.Is(err, syncbus.ErrClosed) {
				return fmt.Errorf("sim: %s: %w", n.spec.Name, err)
			}
		}
	}
	return nil
}

// Crash crashes node n's host (Host.Crash): from now on its bus neither
// hears nor answers anyone. The bus is closed in the background, and
// Close waits for it. Crashing a crashed node does nothing.
func (c *Cluster) Crash(n *Node) {
	n.host.Crash()
	n.mu.Lock()
	b := n.bus
	n.bus = nil
	n.mu.Unlock()
	if b != nil {
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			_ = b.Close()
		}()
	}
}

// Restart stops node n's bus gracefully (it leaves the cluster), unless
// it is crashed, and starts a new one on the same host under the same
// name: a new incarnation. It returns the new bus once it sees every
// other running node, or ctx ends.
func (c *Cluster) Restart(ctx context.Context, n *Node) (*mesh.MeshBus, error) {
	n.mu.Lock()
	old := n.bus
	n.bus = nil
	n.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	b, err := c.start(n)
	if err != nil {
		return nil, err
	}
	return b, c.WaitConverged(ctx)
}

// Close crashes every host, closes every bus (in parallel: they leave no
// one behind, so none waits for a graceful leave) and the network. It is
// idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, n := range c.nodes {
			n.host.Crash()
			n.mu.Lock()
			b := n.bus
			n.bus = nil
			n.mu.Unlock()
			if b != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = b.Close()
				}()
			}
		}
		wg.Wait()
		c.bg.Wait()
		_ = c.net.Close()
	})
	return nil
}
