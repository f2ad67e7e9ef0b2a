package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// MeshBus is the brokerless bus: a node of a Warp Mesh. It is safe for
// concurrent use. Create it with NewMeshBus and stop it with Close.
//
// It is the driver of the protocol core (package mesh/internal/protocol):
// one goroutine, the event loop, owns the core and feeds it datagrams,
// membership changes, publishes and the clock, and carries its decisions
// out — deliveries to the subscriptions, frames to the sockets, outcomes
// to the awaiting callers. The bus's own locks guard the publish queue and
// the subscriptions, never a protocol decision.
type MeshBus struct {
	opts   MeshOptions
	log    *slog.Logger
	clock  Clock
	name   string
	zone   string
	region string
	boot   uint64

	keyring *wire.Keyring
	opener  *wire.Opener
	ml      *membership.Membership
	tr      membership.Transport
	multi   membership.MultiSender // tr, when it can send to many at once

	disp    *syncbus.Dispatcher
	ids     *syncbus.IDGenerator
	relayed *syncbus.DedupeWindow // IDs of events republished by gateways
	ackLat  *syncbus.LatencyRecorder
	rec     syncbus.Recorder

	in      *inbox
	awaitID atomic.Uint64
	topo    atomic.Pointer[zones.Topology] // the core's, for fail fast in callers
	// topoVersion is the membership snapshot version topo reflects.
	topoVersion atomic.Uint64

	// Owned by the event loop.
	core        *protocol.Core
	awaiting    map[uint64]*awaitReq
	viewVersion uint64
	hidden      func(name string) bool // tests: members the data plane does not see yet
	sealer      *wire.Sealer
	bld         wire.EventsBuilder
	body        []byte // opened bodies
	frame       []byte // encoded bodies
	sealed      []byte // sealed datagrams
	batch       []wire.Event
	lastTake    int       // events taken into the core by the last take
	lastTakeAt  time.Time // when
	lingerUntil time.Time // the loop holds the queue until then (zero: not)

	// statsMu guards stats, the core's counters when the loop stopped.
	statsMu sync.Mutex
	stats   protocol.Stats

	refusalLog *rate.Limiter // one log line a second for dropped datagrams
	c          counters

	// localReleased is set while this node's own full subscriptions no
	// longer hold publishes back (see waitLocalRoom).
	localReleased atomic.Bool

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed by Close: the loop finishes its work
	loopDone  chan struct{} // closed when the loop has exited
	wg        sync.WaitGroup
}

var (
	_ syncbus.Bus              = (*MeshBus)(nil)
	_ syncbus.PrefixSubscriber = (*MeshBus)(nil)
	_ syncbus.MemberLister     = (*MeshBus)(nil)
	_ syncbus.Relayer          = (*MeshBus)(nil)
	_ syncbus.MetricsReporter  = (*MeshBus)(nil)
	_ syncbus.AllSubscriber    = (*MeshBus)(nil)
)

// dataQueue is how many received datagrams of the data plane may wait for
// the event loop (about 40 events each under load) before new ones are
// dropped; each holds a pooled 2 KiB buffer.
const dataQueue = 8192

// NewMeshBus starts a mesh node: it binds its port, starts joining
// opts.Peers in the background (an unreachable seed is retried and logged,
// never an error here) and returns. A bad option is an error.
func NewMeshBus(opts MeshOptions) (*MeshBus, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	keyring, err := wire.NewKeyring(opts.SecretKeys...)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	disp, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: opts.PrefixBuffer})
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	mcfg := opts.membershipConfig(keyring)
	if mcfg.Transport == nil {
		// The data plane's bursts are deeper than membership's default
		// queue allows for: a receiver that is briefly busy would drop them.
		nt, err := membership.NewNetTransport(membership.NetConfig{
			BindAddr: opts.BindAddr, BindPort: opts.Port,
			DatagramQueue: dataQueue, Logger: opts.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		mcfg.Transport = nt // membership owns it from here, failure included
	}
	ml, err := membership.New(mcfg)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	local := ml.Local()
	relayed := syncbus.NewDedupeWindow(opts.DedupeWindow)
	core, err := protocol.New(protocol.Config{
		Name: local.Name, Zone: local.Zone, Region: local.Region, Boot: local.Boot,
		Fanout:         protocol.Fanout(opts.Fanout),
		RelayThreshold: opts.RelayThreshold,
		RepairBuffer:   opts.RepairBuffer,
		Window:         opts.FlowWindow,
		TimeScale:      opts.TimeScale,
		Timings:        protocol.Timings{StallTimeout: opts.StallTimeout},
		Relayed:        relayed,
	})
	if err != nil {
		_ = ml.Close()
		return nil, fmt.Errorf("mesh: %w", err)
	}
	b := &MeshBus{
		opts:       opts,
		log:        opts.Logger.With("node", local.Name),
		clock:      opts.Clock,
		name:       local.Name,
		zone:       local.Zone,
		region:     local.Region,
		boot:       local.Boot,
		keyring:    keyring,
		opener:     wire.NewOpener(keyring, opts.Label, wire.WithMaxSenders(maxSenders)),
		sealer:     wire.NewSealer(keyring, opts.Label),
		ml:         ml,
		tr:         ml.Transport(),
		disp:       disp,
		ids:        syncbus.NewIDGenerator(),
		relayed:    relayed,
		ackLat:     syncbus.NewLatencyRecorder(),
		rec:        opts.Recorder,
		in:         newInbox(inboxLimit, opts.BatchSize),
		core:       core,
		awaiting:   make(map[uint64]*awaitReq),
		body:       make([]byte, 0, wire.MaxDatagramSize),
		frame:      make([]byte, 0, wire.MaxDatagramSize),
		sealed:     make([]byte, 0, wire.MaxDatagramSize),
		done:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		refusalLog: rate.NewLimiter(rate.Every(time.Second), 1),
	}
	b.multi, _ = b.tr.(membership.MultiSender)
	if err := b.syncView(b.clock.Now()); err != nil {
		_ = ml.Close()
		return nil, fmt.Errorf("mesh: %w", err)
	}
	b.core.Advance() // nothing to send yet: this node knows no one
	if keyring.Empty() {
		b.log.Warn("mesh: no SecretKeys: datagrams are neither authenticated nor encrypted")
	}
	b.goFunc(b.loop)
	return b, nil
}

// maxSenders is how many senders' replay windows a node keeps; each node
// seals with one sender ID per incarnation, so this covers clusters of
// thousands of nodes and their restarts.
const maxSenders = 16384

// inboxLimit bounds the events waiting for the event loop; a publisher
// that finds the queue full waits for room (or for its ctx, or the
// backpressure bound), so a burst can never grow memory without bound.
const inboxLimit = 1 << 14

// goFunc runs f in a goroutine that Close waits for.
func (b *MeshBus) goFunc(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Name returns this node's name.
func (b *MeshBus) Name() string { return b.name }

// Addr returns the address this node is reached at: its port for gossip and
// data (the bound port when Port was -1).
func (b *MeshBus) Addr() netip.AddrPort { return b.ml.Local().Addr }

// Members returns every node this one knows, itself included: alive and
// suspect ones, and for a while those that left or failed.
func (b *MeshBus) Members() []syncbus.Member { return b.ml.Members() }

// WaitForMembers waits until this node knows n alive members, itself
// included, or ctx ends. A freshly started node knows only itself, so an
// awaiting call that needs other nodes fails fast until they are known:
// call this first where startup order matters.
func (b *MeshBus) WaitForMembers(ctx context.Context, n int) error {
	tick := time.NewTicker(protocol.Scale(10*time.Millisecond, b.opts.TimeScale))
	defer tick.Stop()
	for {
		if err := b.checkOpen(ctx); err != nil {
			return err
		}
		alive := 0
		for _, m := range b.ml.Snapshot().Nodes {
			if m.State.Alive() {
				alive++
			}
		}
		if alive >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mesh: %d of %d members known: %w", alive, n, ctx.Err())
		case <-b.done:
			return syncbus.ErrClosed
		case <-tick.C:
		}
	}
}

// Membership returns the node's membership, for inspection (its Events and
// Snapshot). Leaving or closing it directly breaks the bus: use Close.
func (b *MeshBus) Membership() *membership.Membership { return b.ml }

// AddKey installs an extra secret key, accepted from now on (a rotation
// starts by adding the new key on every node).
func (b *MeshBus) AddKey(key []byte) error { return b.keyChange(b.keyring.AddKey(key)) }

// UseKey makes an installed key the one this node sends with.
func (b *MeshBus) UseKey(key []byte) error { return b.keyChange(b.keyring.UseKey(key)) }

// RemoveKey uninstalls a key that is not the primary one.
func (b *MeshBus) RemoveKey(key []byte) error { return b.keyChange(b.keyring.RemoveKey(key)) }

func (b *MeshBus) keyChange(err error) error {
	if b.closed.Load() {
		return syncbus.ErrClosed
	}
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	return nil
}

// Close leaves the cluster gracefully (bounded by a short timeout), stops
// every goroutine, fails the awaiting calls in flight and closes every
// subscription channel. What was published before Close is still sent,
// whatever the receivers' credit. Calling it again returns nil; afterwards
// every other method returns syncbus.ErrClosed.
func (b *MeshBus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.done) // the loop sends what is queued and its last digests, then stops
		b.wg.Wait()
		err = b.ml.Close() // leaves, then shuts the transport down
		b.disp.Close()
	})
	return err
}

// checkOpen returns ErrClosed after Close and ctx's error when it is done.
func (b *MeshBus) checkOpen(ctx context.Context) error {
	if b.closed.Load() {
		return syncbus.ErrClosed
	}
	return ctx.Err()
}

// Subscribe returns a channel that receives the events published for key
// on any node, this one included. It keeps the newest event while it is not
// read. Cancelling ctx or calling Unsubscribe closes it.
func (b *MeshBus) Subscribe(ctx context.Context, key string) (<-chan syncbus.Event, error) {
	if err := b.checkOpen(ctx); err != nil {
		return nil, err
	}
	return b.disp.Subscribe(ctx, key)
}

// Unsubscribe ends a subscription made by Subscribe and closes its channel.
func (b *MeshBus) Unsubscribe(_ context.Context, key string, ch <-chan syncbus.Event) error {
	if b.closed.Load() {
		return syncbus.ErrClosed
	}
	return b.disp.Unsubscribe(key, ch)
}

// SubscribePrefix returns a channel that receives the events of every key
// starting with prefix (every key for ""). Its buffer holds
// MeshOptions.PrefixBuffer events; on overflow it receives one resync, and
// the node's flow control slows the publishers down to what its readers
// take.
func (b *MeshBus) SubscribePrefix(ctx context.Context, prefix string) (<-chan syncbus.Event, error) {
	if err := b.checkOpen(ctx); err != nil {
		return nil, err
	}
	return b.disp.SubscribePrefix(ctx, prefix)
}

// UnsubscribePrefix ends a prefix subscription and closes its channel.
func (b *MeshBus) UnsubscribePrefix(_ context.Context, prefix string, ch <-chan syncbus.Event) error {
	if b.closed.Load() {
		return syncbus.ErrClosed
	}
	return b.disp.UnsubscribePrefix(prefix, ch)
}

// SubscribeLease returns a channel that receives the revocations of lease id.
func (b *MeshBus) SubscribeLease(ctx context.Context, id string) (<-chan syncbus.Event, error) {
	if err := b.checkOpen(ctx); err != nil {
		return nil, err
	}
	return b.disp.SubscribeLease(ctx, id)
}

// UnsubscribeLease ends a lease subscription and closes its channel.
func (b *MeshBus) UnsubscribeLease(_ context.Context, id string, ch <-chan syncbus.Event) error {
	if b.closed.Load() {
		return syncbus.ErrClosed
	}
	return b.disp.UnsubscribeLease(id, ch)
}

// SubscribeAll returns a channel that receives every event this node
// delivers — invalidations of every key and lease revocations, published
// on this bus or relayed into it — with a prefix subscription's buffer and
// overflow resync (Key ""). A gateway reads a bus through it.
func (b *MeshBus) SubscribeAll(ctx context.Context) (<-chan syncbus.Event, error) {
	if err := b.checkOpen(ctx); err != nil {
		return nil, err
	}
	return b.disp.SubscribeAll(ctx)
}

// UnsubscribeAll ends an all-events subscription and closes its channel.
func (b *MeshBus) UnsubscribeAll(_ context.Context, ch <-chan syncbus.Event) error {
	if b.closed.Load() {
		return syncbus.ErrClosed
	}
	return b.disp.UnsubscribeAll(ch)
}

// Relayed reports whether the event with this ID reached this node through
// Relay (here or on another node) rather than from a publisher of this
// mesh, as far as the node's dedupe window (MeshOptions.DedupeWindow)
// remembers: the ID is recorded before the event is delivered.
func (b *MeshBus) Relayed(id syncbus.EventID) bool { return b.relayed.Contains(id) }

// errTooLarge wraps wire's error for an event that cannot fit a datagram.
func errTooLarge(err error) error {
	if errors.Is(err, wire.ErrTooLarge) {
		return fmt.Errorf("mesh: event does not fit one datagram: %w", err)
	}
	return fmt.Errorf("mesh: %w", err)
}
