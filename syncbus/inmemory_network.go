package syncbus

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAckTimeout bounds the wait of an awaiting call of the in-memory
// bus whose ctx has no deadline, unless WithAckTimeout says otherwise.
const DefaultAckTimeout = 5 * time.Second

// ErrNodeExists is returned by InMemoryNetwork.Join for a name already used
// by a node that has not closed.
var ErrNodeExists = errors.New("syncbus: node name in use")

// InMemoryNetwork joins in-memory buses in one process into a cluster with
// zones, so code and tests can exercise cluster semantics (delivery to
// every node, acknowledgements, zone counting, fail fast) without a
// network.
//
// Delivery and acknowledgement are synchronous: a publish hands the event to
// every node's subscriptions (never blocking, as everywhere) and collects
// the acks of the nodes that acknowledge before the call goes on. So when
// Publish returns, every node has delivered the event, and an awaiting call
// that is not satisfied by then has every ack it will get (it still waits
// for its ctx, as on every Bus).
//
// A node that closes leaves the network: it no longer counts as alive and
// Members reports it as left until a node of that name joins again. An
// InMemoryNetwork has no goroutines and needs no closing. It is safe for
// concurrent use.
type InMemoryNetwork struct {
	mu    sync.Mutex
	nodes map[string]*InMemoryBus
	left  map[string]Member
	// alive is the current nodes in join order, replaced as a whole on
	// every join and leave, so a publish reads it without locking.
	alive atomic.Pointer[[]*InMemoryBus]
}

// NewInMemoryNetwork returns an empty network.
func NewInMemoryNetwork() *InMemoryNetwork {
	n := &InMemoryNetwork{
		nodes: make(map[string]*InMemoryBus),
		left:  make(map[string]Member),
	}
	n.alive.Store(new([]*InMemoryBus))
	return n
}

// NodeOption configures one node of an InMemoryNetwork; see Join.
type NodeOption func(*nodeConfig)

type nodeConfig struct {
	region       string
	ackTimeout   time.Duration
	prefixBuffer int
	dedupeWindow int
	logger       *slog.Logger
}

// WithNodeRegion sets the node's region, which its events carry unless
// published WithRegion. The default is "".
func WithNodeRegion(region string) NodeOption {
	return func(c *nodeConfig) { c.region = region }
}

// WithAckTimeout bounds the wait of the node's awaiting calls whose ctx has
// no deadline (default DefaultAckTimeout; it must be positive).
func WithAckTimeout(d time.Duration) NodeOption {
	return func(c *nodeConfig) { c.ackTimeout = d }
}

// WithPrefixBuffer sets how many events each prefix subscription of the
// node holds (default DefaultPrefixBuffer; at most MaxPrefixBuffer).
func WithPrefixBuffer(n int) NodeOption {
	return func(c *nodeConfig) { c.prefixBuffer = n }
}

// WithDedupeWindow sets how many relayed event IDs the node remembers to
// drop duplicates (default DefaultDedupeWindow; it must be positive).
func WithDedupeWindow(n int) NodeOption {
	return func(c *nodeConfig) { c.dedupeWindow = n }
}

// WithLogger sets the node's logger (nil, the default, discards).
func WithLogger(l *slog.Logger) NodeOption {
	return func(c *nodeConfig) { c.logger = l }
}

func (c *nodeConfig) validate() error {
	if c.ackTimeout == 0 {
		c.ackTimeout = DefaultAckTimeout
	} else if c.ackTimeout < 0 {
		return fmt.Errorf("syncbus: WithAckTimeout(%v): must be positive", c.ackTimeout)
	}
	if c.dedupeWindow == 0 {
		c.dedupeWindow = DefaultDedupeWindow
	} else if c.dedupeWindow < 0 {
		return fmt.Errorf("syncbus: WithDedupeWindow(%d): must be positive", c.dedupeWindow)
	}
	if c.prefixBuffer < 0 || c.prefixBuffer > MaxPrefixBuffer {
		return fmt.Errorf("syncbus: WithPrefixBuffer(%d): out of range [1, %d]", c.prefixBuffer, MaxPrefixBuffer)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Join adds a node named name in zone (the empty zone is a zone like any
// other) and returns its bus. It fails for an empty name, a name in use by
// a node that has not closed (ErrNodeExists), or a bad option.
func (n *InMemoryNetwork) Join(name, zone string, opts ...NodeOption) (*InMemoryBus, error) {
	if name == "" {
		return nil, fmt.Errorf("syncbus: join: empty node name: %w", ErrInvalidKey)
	}
	var cfg nodeConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	disp, err := NewDispatcher(DispatcherConfig{PrefixBuffer: cfg.prefixBuffer})
	if err != nil {
		return nil, err
	}
	b := &InMemoryBus{
		net:        n,
		name:       name,
		zone:       zone,
		region:     cfg.region,
		ackTimeout: cfg.ackTimeout,
		log:        cfg.logger.With("node", name, "zone", zone),
		disp:       disp,
		ids:        NewIDGenerator(),
		dedupe:     NewDedupeWindow(cfg.dedupeWindow),
		ackLatency: NewLatencyRecorder(),
		done:       make(chan struct{}),
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.nodes[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrNodeExists, name)
	}
	n.nodes[name] = b
	delete(n.left, name)
	n.publishLocked()
	b.log.Debug("joined in-memory network")
	return b, nil
}

// leave removes b, which is closing, from the alive nodes.
func (n *InMemoryNetwork) leave(b *InMemoryBus) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[b.name] != b {
		return
	}
	delete(n.nodes, b.name)
	n.left[b.name] = Member{Name: b.name, Zone: b.zone, Region: b.region, State: MemberLeft}
	n.publishLocked()
}

// publishLocked rebuilds the alive snapshot in join order.
func (n *InMemoryNetwork) publishLocked() {
	old := *n.alive.Load()
	next := make([]*InMemoryBus, 0, len(n.nodes))
	for _, b := range old {
		if n.nodes[b.name] == b {
			next = append(next, b)
		}
	}
	for _, b := range n.nodes {
		if !slices.Contains(next, b) {
			next = append(next, b) // the one that just joined
		}
	}
	n.alive.Store(&next)
}

// snapshot returns the alive nodes; the slice is shared and read-only.
func (n *InMemoryNetwork) snapshot() []*InMemoryBus { return *n.alive.Load() }

// Members returns every node that joined, sorted by name: the alive ones as
// MemberAlive, those that closed as MemberLeft.
func (n *InMemoryNetwork) Members() []Member {
	n.mu.Lock()
	ms := make([]Member, 0, len(n.nodes)+len(n.left))
	for _, b := range n.nodes {
		ms = append(ms, Member{Name: b.name, Zone: b.zone, Region: b.region, State: MemberAlive})
	}
	for _, m := range n.left {
		ms = append(ms, m)
	}
	n.mu.Unlock()
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return ms
}
