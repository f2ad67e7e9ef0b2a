package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// MeshBus is the brokerless bus: a node of a Warp Mesh. It is safe for
// concurrent use. Create it with NewMeshBus and stop it with Close.
type MeshBus struct {
	opts   MeshOptions
	log    *slog.Logger
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

	num     numbering // this node's sequence numbers
	sendBuf *sendBuffer
	awaits  awaitTable
	out     *batcher
	// loopOutbox belongs to the event loop, and to Close once the loop
	// stopped; outboxes to the awaiting publishers.
	loopOutbox *outbox
	outboxes   *outboxes

	viewMu sync.Mutex // serialises view rebuilds
	view   atomic.Pointer[view]

	// lastSend is when this node last sent events (unix nanoseconds), for
	// the digests that reveal a lost tail.
	lastSend atomic.Int64
	muted    atomic.Bool // tests: stop acknowledging
	// lastRefusalLog is when a dropped datagram was last logged.
	lastRefusalLog atomic.Int64
	// loopIdle is set while the event loop ticks slowly; kick wakes it.
	loopIdle atomic.Bool
	kick     chan struct{}

	c counters

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

var (
	_ syncbus.Bus              = (*MeshBus)(nil)
	_ syncbus.PrefixSubscriber = (*MeshBus)(nil)
	_ syncbus.MemberLister     = (*MeshBus)(nil)
	_ syncbus.Relayer          = (*MeshBus)(nil)
	_ syncbus.MetricsReporter  = (*MeshBus)(nil)
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
	mcfg := membership.Config{
		Name:          opts.NodeName,
		BindAddr:      opts.BindAddr,
		BindPort:      opts.Port,
		Seeds:         opts.Peers,
		Zone:          opts.Zone,
		Region:        opts.Region,
		Keyring:       keyring,
		Label:         opts.Label,
		Profile:       opts.Profile,
		ProbeInterval: opts.Heartbeat,
		Transport:     opts.Transport,
		Logger:        opts.Logger,
	}
	if opts.AdvertiseAddr != "" {
		ip, port, _ := splitAdvertise(opts.AdvertiseAddr) // checked by validate
		mcfg.AdvertiseAddr, mcfg.AdvertisePort = ip.String(), port
	}
	if opts.membershipTuning != nil {
		opts.membershipTuning(&mcfg)
	}
	disp, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: opts.PrefixBuffer})
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
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
	b := &MeshBus{
		opts:    opts,
		log:     opts.Logger.With("node", local.Name),
		name:    local.Name,
		zone:    local.Zone,
		region:  local.Region,
		boot:    local.Boot,
		keyring: keyring,
		opener:  wire.NewOpener(keyring, opts.Label, wire.WithMaxSenders(maxSenders)),
		ml:      ml,
		tr:      ml.Transport(),
		disp:    disp,
		ids:     syncbus.NewIDGenerator(),
		relayed: syncbus.NewDedupeWindow(0),
		ackLat:  syncbus.NewLatencyRecorder(),
		sendBuf: newSendBuffer(opts.RepairBuffer),
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
	}
	b.multi, _ = b.tr.(membership.MultiSender)
	b.loopIdle.Store(true)
	b.awaits.init()
	if _, err := b.currentView(); err != nil {
		_ = ml.Close()
		return nil, fmt.Errorf("mesh: %w", err)
	}
	if keyring.Empty() {
		b.log.Warn("mesh: no SecretKeys: datagrams are neither authenticated nor encrypted")
	}
	b.loopOutbox = newOutbox(keyring, opts.Label)
	b.outboxes = newOutboxes(max(2, runtime.GOMAXPROCS(0)), keyring, opts.Label)
	b.out = newBatcher(b)
	b.goFunc(b.out.run)
	b.goFunc(b.loop)
	return b, nil
}

// goFunc runs f in a goroutine that Close waits for.
func (b *MeshBus) goFunc(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// currentView returns the view for the membership's current snapshot,
// building it when the membership changed since the last one.
func (b *MeshBus) currentView() (*view, error) {
	snap := b.ml.Snapshot()
	if v := b.view.Load(); v != nil && v.version == snap.Version {
		return v, nil
	}
	b.viewMu.Lock()
	defer b.viewMu.Unlock()
	snap = b.ml.Snapshot()
	if v := b.view.Load(); v != nil && v.version >= snap.Version {
		return v, nil
	}
	v, err := newView(snap, b.opts.Fanout, b.opts.RelayThreshold, b.view.Load(), b.num.assigned())
	if err != nil {
		return nil, err
	}
	b.view.Store(v)
	return v, nil
}

// mustView is currentView for paths that cannot fail: it falls back to the
// last good view (a snapshot that does not build a topology would be a bug
// in membership, and is logged).
func (b *MeshBus) mustView() *view {
	v, err := b.currentView()
	if err != nil {
		b.log.Error("mesh: membership snapshot unusable; keeping the previous view", "err", err)
		return b.view.Load()
	}
	return v
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
	tick := time.NewTicker(10 * time.Millisecond)
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
// subscription channel. Calling it again returns nil; afterwards every other
// method returns syncbus.ErrClosed.
func (b *MeshBus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.done) // the batcher flushes what is queued, then both loops stop
		b.wg.Wait()
		b.sendFinalDigest()
		err = b.ml.Close() // leaves, then shuts the transport down
		b.disp.Close()
	})
	return err
}

// sendFinalDigest tells every node the last number this node used, so that
// a node that missed the last events finds out now — and, since this node
// is leaving and cannot repair them, resyncs — rather than never.
func (b *MeshBus) sendFinalDigest() {
	seq := b.num.watermark()
	if seq == 0 {
		return
	}
	v := b.mustView()
	for _, p := range v.alive {
		d := wire.Digest{Origin: b.name, Boot: b.boot, Seq: seq, Start: min(v.joinSeq[p.name], seq)}
		body, err := wire.AppendDigest(nil, &d, false)
		if err == nil {
			b.sendTo(v, classRepair, body, b.loopOutbox, p.addr)
		}
	}
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
// MeshOptions.PrefixBuffer events; on overflow it receives one resync.
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

// errTooLarge wraps wire's error for an event that cannot fit a datagram.
func errTooLarge(err error) error {
	if errors.Is(err, wire.ErrTooLarge) {
		return fmt.Errorf("mesh: event does not fit one datagram: %w", err)
	}
	return fmt.Errorf("mesh: %w", err)
}

// nanotime is the clock of the protocol's timers.
func nanotime() int64 { return time.Now().UnixNano() }
