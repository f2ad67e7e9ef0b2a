package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// A gateway joins two buses: a local one (a region's mesh, or its broker)
// and a remote one (the broker that joins regions, or another region's
// broker). It reads every event of each side (syncbus.AllSubscriber) and
// republishes the ones that must cross into the other with
// syncbus.Relayer, so each keeps its ID, origin, zone, region and scope.
//
// What crosses:
//
//   - Only ScopeGlobal events, unless WithAllScopes (then ScopeLocal ones
//     too: a mesh and a broker of one region are one region).
//   - From local to remote, only the events published on the local bus:
//     an event relayed into it (local.Relayed) came from the remote side,
//     through this gateway or another one, and never goes back.
//   - From remote to local, only the events that did not come from the
//     local bus: an event whose origin is a member of the local bus (it
//     was relayed out by a gateway of this region) stays out, and so does
//     an event this gateway has already seen on either side (its own
//     dedupe window, WithGatewayWindow).
//   - Resyncs never cross (syncbus.ValidateRelayed refuses them): when a
//     side loses events for the gateway (its buffer overflowed, its broker
//     reconnected), the gateway counts it (GatewayStats.SourceResyncs) and
//     logs it. Size the local bus's prefix buffer for the relay's lag.
//
// The remote bus may be a transit between several regions (a broker that
// joins two meshes): a gateway relays from it events that came into it
// from a third bus, since their origin is not a local member.
//
// Several gateways per region relay the same events; every receiving node
// delivers each ID once, because buses deduplicate relayed events by ID
// (their dedupe window: size it to cover a few seconds of relayed
// traffic). A gateway that restarts starts with an empty window of its
// own, and the rules above do not depend on it: it only saves traffic.
// Node names must be unique across the buses a gateway joins.

// Direction says which way a gateway relays.
type Direction uint8

const (
	// BothWays relays local to remote and remote to local (the default).
	BothWays Direction = iota
	// LocalToRemote relays only from the local bus to the remote one.
	LocalToRemote
	// RemoteToLocal relays only from the remote bus to the local one.
	RemoteToLocal
)

// DefaultGatewayWindow is how many event IDs a gateway remembers by
// default.
const DefaultGatewayWindow = 1 << 16

// GatewayOption configures a Gateway.
type GatewayOption func(*gatewayConfig) error

type gatewayConfig struct {
	allScopes bool
	direction Direction
	window    int
	logger    *slog.Logger
	name      string
	retries   int
}

// WithAllScopes makes the gateway relay ScopeLocal events too, not only
// ScopeGlobal ones: for a local and a remote bus that are one region (a
// mesh and the broker its non-Go services use).
func WithAllScopes() GatewayOption {
	return func(c *gatewayConfig) error { c.allScopes = true; return nil }
}

// WithDirection restricts the gateway to one direction.
func WithDirection(d Direction) GatewayOption {
	return func(c *gatewayConfig) error {
		if d > RemoteToLocal {
			return optionError("WithDirection", d, errors.New("unknown direction"))
		}
		c.direction = d
		return nil
	}
}

// WithGatewayWindow sets how many event IDs the gateway remembers
// (default DefaultGatewayWindow).
func WithGatewayWindow(n int) GatewayOption {
	return func(c *gatewayConfig) error {
		if n <= 0 || n > 1<<24 {
			return optionError("WithGatewayWindow", n, fmt.Errorf("out of range (1..%d)", 1<<24))
		}
		c.window = n
		return nil
	}
}

// WithGatewayLogger sets the gateway's logger (default: discard).
func WithGatewayLogger(l *slog.Logger) GatewayOption {
	return func(c *gatewayConfig) error { c.logger = l; return nil }
}

// WithGatewayName names the gateway in its logs.
func WithGatewayName(name string) GatewayOption {
	return func(c *gatewayConfig) error { c.name = name; return nil }
}

// GatewayStats are a gateway's counters since it started.
type GatewayStats struct {
	// Relayed counts events relayed, by direction.
	LocalToRemote, RemoteToLocal uint64
	// Scoped counts events that stayed home for their scope.
	Scoped uint64
	// Returning counts events not relayed because they came from the bus
	// they would go to (loops avoided).
	Returning uint64
	// SourceResyncs counts resyncs the gateway's subscriptions received:
	// each means a side lost events the gateway could not relay.
	SourceResyncs uint64
	// Errors counts relays that failed.
	Errors uint64
}

// Gateway relays events between a local and a remote bus; see the rules
// above. It owns two goroutines, which Close stops; it does not close the
// buses. It is safe for concurrent use.
type Gateway struct {
	cfg           gatewayConfig
	log           *slog.Logger
	local, remote endpoint
	seen          *syncbus.DedupeWindow

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	members memberCache

	toRemote, toLocal, scoped, returning, resyncs, errs atomic.Uint64
}

// gatewayBus is what a gateway needs of each bus.
type gatewayBus interface {
	syncbus.Bus
	syncbus.AllSubscriber
	syncbus.Relayer
}

type endpoint struct {
	bus gatewayBus
	ch  <-chan syncbus.Event
}

// NewGateway starts relaying between local and remote, which must
// implement syncbus.AllSubscriber and syncbus.Relayer (every bus of this
// module does). Both subscriptions are live when it returns.
func NewGateway(local, remote syncbus.Bus, opts ...GatewayOption) (*Gateway, error) {
	cfg := gatewayConfig{window: DefaultGatewayWindow, retries: 3}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	l, ok := local.(gatewayBus)
	if !ok {
		return nil, fmt.Errorf("bridge: gateway: the local bus %T does not implement syncbus.AllSubscriber and syncbus.Relayer", local)
	}
	r, ok := remote.(gatewayBus)
	if !ok {
		return nil, fmt.Errorf("bridge: gateway: the remote bus %T does not implement syncbus.AllSubscriber and syncbus.Relayer", remote)
	}
	g := &Gateway{cfg: cfg, local: endpoint{bus: l}, remote: endpoint{bus: r}, seen: syncbus.NewDedupeWindow(cfg.window)}
	g.log = cfg.logger.With("gateway", cfg.name)
	g.members.src, _ = local.(syncbus.MemberLister)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	var err error
	if g.local.ch, err = l.SubscribeAll(g.ctx); err != nil {
		g.cancel()
		return nil, fmt.Errorf("bridge: gateway: subscribing to the local bus: %w", err)
	}
	if g.remote.ch, err = r.SubscribeAll(g.ctx); err != nil {
		g.cancel()
		return nil, fmt.Errorf("bridge: gateway: subscribing to the remote bus: %w", err)
	}
	g.wg.Add(2)
	go g.run(g.local, g.remote, true)
	go g.run(g.remote, g.local, false)
	return g, nil
}

// run relays from src to dst until Close (or src closes).
func (g *Gateway) run(src, dst endpoint, outbound bool) {
	defer g.wg.Done()
	dir := "remote→local"
	if outbound {
		dir = "local→remote"
	}
	for {
		var ev syncbus.Event
		var ok bool
		select {
		case ev, ok = <-src.ch:
			if !ok {
				return
			}
		case <-g.ctx.Done():
			return
		}
		if ev.Op == syncbus.OpResync {
			g.resyncs.Add(1)
			g.log.Warn("bridge: gateway lost events of a bus: the other side may keep stale entries", "direction", dir, "origin", ev.Origin)
			continue
		}
		if !g.wanted(src, &ev, outbound) {
			continue
		}
		g.relay(dst, ev, dir, outbound)
	}
}

// wanted applies the rules of what crosses.
func (g *Gateway) wanted(src endpoint, ev *syncbus.Event, outbound bool) bool {
	seenBefore := g.seen.Seen(ev.ID)
	switch {
	case outbound && g.cfg.direction == RemoteToLocal, !outbound && g.cfg.direction == LocalToRemote:
		return false
	case outbound && (seenBefore || src.bus.Relayed(ev.ID)):
		g.returning.Add(1)
		return false
	case !outbound && (seenBefore || g.members.has(ev.Origin)):
		g.returning.Add(1)
		return false
	case ev.Scope != syncbus.ScopeGlobal && !g.cfg.allScopes:
		g.scoped.Add(1)
		return false
	}
	return true
}

// relay hands ev to dst, retrying a failure a few times (a mesh under
// backpressure, say).
func (g *Gateway) relay(dst endpoint, ev syncbus.Event, dir string, outbound bool) {
	var err error
	for attempt := 0; attempt <= g.cfg.retries; attempt++ {
		if err = dst.bus.Relay(g.ctx, ev); err == nil {
			if outbound {
				g.toRemote.Add(1)
			} else {
				g.toLocal.Add(1)
			}
			return
		}
		if g.ctx.Err() != nil || errors.Is(err, syncbus.ErrClosed) || errors.Is(err, syncbus.ErrInvalidEvent) || errors.Is(err, syncbus.ErrInvalidKey) {
			break
		}
	}
	if g.ctx.Err() != nil {
		return
	}
	g.errs.Add(1)
	g.log.Warn("bridge: gateway could not relay an event", "direction", dir, "key", ev.Key, "id", ev.ID, "err", err)
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() GatewayStats {
	return GatewayStats{
		LocalToRemote: g.toRemote.Load(),
		RemoteToLocal: g.toLocal.Load(),
		Scoped:        g.scoped.Load(),
		Returning:     g.returning.Load(),
		SourceResyncs: g.resyncs.Load(),
		Errors:        g.errs.Load(),
	}
}

// Close stops relaying and ends the gateway's subscriptions; it does not
// close the buses. A second call returns nil.
func (g *Gateway) Close() error {
	g.once.Do(func() {
		g.cancel()
		g.wg.Wait()
		// The subscriptions end with g.ctx; unsubscribing explicitly makes
		// it happen before Close returns.
		_ = g.local.bus.UnsubscribeAll(context.Background(), g.local.ch)
		_ = g.remote.bus.UnsubscribeAll(context.Background(), g.remote.ch)
	})
	return nil
}

// memberCache answers "is this origin a member of the local bus", reading
// the bus's member list at most every memberRefresh, and again on a miss
// at most every memberMissRefresh: a gateway at a high event rate must not
// copy the member list per event.
type memberCache struct {
	src     syncbus.MemberLister
	mu      sync.Mutex
	names   map[string]struct{}
	at      time.Time
	missAt  time.Time
	version int
}

const (
	memberRefresh     = time.Second
	memberMissRefresh = 10 * time.Millisecond
)

func (m *memberCache) has(name string) bool {
	if m.src == nil || name == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.names == nil || now.Sub(m.at) > memberRefresh {
		m.load(now)
	}
	if _, ok := m.names[name]; ok {
		return true
	}
	if now.Sub(m.missAt) > memberMissRefresh {
		m.missAt = now
		m.load(now)
		_, ok := m.names[name]
		return ok
	}
	return false
}

func (m *memberCache) load(now time.Time) {
	ms := m.src.Members()
	names := make(map[string]struct{}, len(ms))
	for _, mb := range ms {
		names[mb.Name] = struct{}{}
	}
	m.names, m.at = names, now
	m.version++
}
