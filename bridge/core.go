package bridge

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// ErrUnavailable is matched by the error of every call of a bus whose
// broker client gave up for good (a NATS connection that closed, a Redis
// client that was closed under the bus): the bus is unhealthy and stays so.
var ErrUnavailable = errors.New("bridge: broker connection lost for good")

// Transport is what a broker offers a bridge: a channel every node of the
// bus reads, and a path back to a publisher for its acknowledgements. The
// bridge packages implement it; frames are sealed wire frames.
//
// Both methods may be called concurrently and must not retain frames
// after they return.
type Transport interface {
	// Publish sends frames, in order, to every node of the bus (the
	// subject, channel or topic), the sender included.
	Publish(ctx context.Context, frames [][]byte) error
	// Ack sends an Acks frame to the node origin, which published the
	// acknowledged events; reply is what the transport passed to
	// Link.Receive with them (a NATS reply inbox, a Kafka ack topic), or "".
	Ack(ctx context.Context, origin, reply string, frame []byte) error
}

// NonBlocking is implemented by a Transport whose Publish and Ack only
// hand frames to the client's buffer (nats.go's publish): the core then
// sends acknowledgements from the receiving goroutine, and a publish on an
// idle bus from the publisher's, each saving a goroutine hop. Since such a
// send returns at once, its ctx carries no deadline (no timer per frame).
type NonBlocking interface {
	Transport
	NonBlocking() bool
}

// InlineAcker is implemented by a Transport whose sends are quick enough (a
// round trip to a nearby Redis, say) to make from the caller's goroutine:
// acknowledgements leave from the receiving goroutine, and a publish on an
// idle bus from the publisher's (one round trip in the caller), each a
// goroutine hop sooner. NonBlocking transports do both anyway.
type InlineAcker interface {
	Transport
	InlineAcks() bool
}

// Core is the broker-independent half of a bridge bus: the semantics of
// ARCHITECTURE.md (local delivery through a syncbus.Dispatcher, relaying
// and deduplication, acknowledgement counting, presence and members,
// resyncs on loss) and the framing every transport shares (wire frames,
// sealed with the keyring, batched and lz4-compressed). A bridge package
// pairs it with a Transport, feeds it what the broker delivers through its
// Link, and exposes its methods as its own bus's.
//
// Core starts three goroutines — the batching sender, the acknowledger
// and the presence loop — which Close stops. It is safe for concurrent use.
type Core struct {
	cfg Config
	err error // a bad option: every call returns it, nothing runs
	tr  Transport
	log *slog.Logger

	name, zone, region string
	boot               uint64

	keyring *wire.Keyring
	// sealer seals event frames and digests, which leave in order under
	// the sender's lock; ctlSealer the acks and presence, sent from other
	// goroutines. Receivers keep a replay window per sealer of 1024
	// counters, so one sealer shared by a long batch and a quick
	// announcement would see the batch's older counters refused.
	sealer, ctlSealer *wire.Sealer
	opener            *wire.Opener
	ids               *syncbus.IDGenerator
	disp              *syncbus.Dispatcher
	relayed           *syncbus.DedupeWindow

	closed    atomic.Bool
	done      chan struct{} // closed by Close
	down      chan struct{} // closed by Link.Failed
	downOnce  sync.Once
	failed    atomic.Pointer[error]
	connected atomic.Bool
	muted     atomic.Bool
	// released: full subscriptions made no room within StallTimeout and
	// hold nothing back until they have room again (see waitRoom).
	released atomic.Bool
	// heldNanos is the time the delivery of frames was held in all, and
	// holdStart when the hold in progress began (Unix ns, 0: none): see
	// holdDelivery.
	heldNanos, holdStart atomic.Int64
	wg                   sync.WaitGroup
	// nonBlocking: the transport only buffers (NonBlocking); inlineAcks:
	// acks are sent from the receiving goroutine (NonBlocking or
	// InlineAcker).
	nonBlocking, inlineAcks bool

	out    *sender
	acks   *acker
	awaits awaitTable
	peers  peerTable
	recv   recvState
	c      counters
	ackLat *syncbus.LatencyRecorder

	lastRefusal atomic.Int64
}

// Link is the transport's side of a Core: what the broker delivers and
// what happens to the connection. Its methods are safe for concurrent use.
type Link struct{ c *Core }

// Broken returns a Core that runs nothing and whose every method returns
// err (Close returns nil): what a bridge constructor, which returns no
// error, builds for a bad option.
func Broken(err error) *Core {
	return &Core{err: err, done: make(chan struct{}), down: make(chan struct{})}
}

// NewCore starts a Core on tr with cfg, which must come from Configure
// without error. The caller starts receiving (and calling the Link) once
// NewCore returns.
func NewCore(cfg Config, tr Transport) (*Core, *Link) {
	disp, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: cfg.PrefixBuffer})
	if err != nil { // Configure checked the range
		return Broken(err), &Link{}
	}
	kr, err := wire.NewKeyring(cfg.SecretKeys...)
	if err != nil {
		return Broken(optionError("WithSecretKeys", "…", err)), &Link{}
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	c := &Core{
		cfg:       cfg,
		tr:        tr,
		name:      cfg.NodeName,
		zone:      cfg.Zone,
		region:    cfg.Region,
		boot:      binary.BigEndian.Uint64(b[:]) | 1, // never 0, which means "unknown"
		keyring:   kr,
		sealer:    wire.NewSealer(kr, cfg.Label),
		ctlSealer: wire.NewSealer(kr, cfg.Label),
		opener:    wire.NewOpener(kr, cfg.Label),
		ids:       syncbus.NewIDGenerator(),
		disp:      disp,
		relayed:   syncbus.NewDedupeWindow(cfg.DedupeWindow),
		done:      make(chan struct{}),
		down:      make(chan struct{}),
		ackLat:    syncbus.NewLatencyRecorder(),
	}
	c.log = cfg.Logger.With("node", c.name, "zone", c.zone)
	if kr.Empty() {
		c.log.Info("bridge: no SecretKeys: frames are not authenticated")
	}
	if nb, ok := tr.(NonBlocking); ok && nb.NonBlocking() {
		c.inlineAcks, c.nonBlocking = true, true
	}
	if ia, ok := tr.(InlineAcker); ok && ia.InlineAcks() {
		c.inlineAcks = true
	}
	c.connected.Store(true)
	c.awaits.init()
	c.peers.init()
	c.recv.init()
	c.out = newSender(c)
	c.acks = newAcker(c)
	c.goFunc(c.out.run)
	c.goFunc(c.acks.run)
	c.goFunc(c.presenceLoop)
	return c, &Link{c: c}
}

// goFunc runs fn in a goroutine that Close waits for.
func (c *Core) goFunc(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// check returns the error every call returns now, or nil.
func (c *Core) check() error {
	if c.err != nil {
		return c.err
	}
	if c.closed.Load() {
		return syncbus.ErrClosed
	}
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Name returns the node's name, the Origin of its events.
func (c *Core) Name() string { return c.name }

// Zone returns the node's zone.
func (c *Core) Zone() string { return c.zone }

// Err returns the bad-option error the bus was built with, or nil.
func (c *Core) Err() error { return c.err }

// Publish sends an invalidation of key to every node and delivers it to
// this node's own subscriptions before returning. On an idle bus the event
// leaves at once — from the caller's goroutine on transports that send
// quickly (NonBlocking, InlineAcker), so Publish may take one send to the
// broker's client — and under load it shares a frame with others, sent by
// the core's sender. A send that fails is logged and counted
// (Metrics.PublishErrors), not returned; receivers see the gap in the
// node's numbering and resync.
func (c *Core) Publish(ctx context.Context, key string, opts ...syncbus.PublishOption) error {
	return c.publish(ctx, key, syncbus.OpInvalidate, opts)
}

// RevokeLease sends the revocation of lease id to every node's lease
// subscriptions of id.
func (c *Core) RevokeLease(ctx context.Context, id string) error {
	return c.publish(ctx, id, syncbus.OpLeaseRevoke, nil)
}

func (c *Core) publish(ctx context.Context, key string, op syncbus.Op, opts []syncbus.PublishOption) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := syncbus.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var o syncbus.PublishOptions
	if len(opts) > 0 {
		o = syncbus.ApplyPublishOptions(opts...)
	}
	ev, err := c.newEvent(key, op, &o)
	if err != nil {
		c.c.publishErrors.Add(1)
		return err
	}
	if err := c.waitRoom(ctx); err != nil {
		return c.countErr(err)
	}
	c.c.published.Add(1)
	c.deliverLocal(&ev)
	return c.countErr(c.out.enqueue(ctx, &ev, nil))
}

// countErr counts a failed publish, not a closed bus.
func (c *Core) countErr(err error) error {
	if err != nil && !errors.Is(err, syncbus.ErrClosed) {
		c.c.publishErrors.Add(1)
	}
	return err
}

// newEvent builds the wire form of an event published here and checks
// that it fits a frame.
func (c *Core) newEvent(key string, op syncbus.Op, o *syncbus.PublishOptions) (wire.Event, error) {
	if !o.Scope.Valid() {
		return wire.Event{}, fmt.Errorf("%w: unknown scope %v", syncbus.ErrInvalidEvent, o.Scope)
	}
	ev := wire.Event{
		ID:          c.ids.Next(),
		Key:         key,
		Op:          op,
		Scope:       o.Scope,
		VectorClock: o.VectorClock,
		Time:        time.Now().UnixNano(),
	}
	if o.Region != "" && o.Region != c.region {
		ev.Region = o.Region
	}
	return ev, c.checkFits(&ev)
}

// checkFits reports an event that cannot fit a frame whatever travels with
// it.
func (c *Core) checkFits(ev *wire.Event) error {
	hdr := c.frameHeader()
	if err := wire.CheckFits(&hdr, ev, frameBudget); err != nil {
		return fmt.Errorf("bridge: event %.64q: %w", ev.Key, err)
	}
	return nil
}

func (c *Core) frameHeader() wire.Events {
	return wire.Events{Origin: c.name, Boot: c.boot, Zone: c.zone, Region: c.region}
}

// deliverLocal hands an event published here to this node's subscriptions.
func (c *Core) deliverLocal(ev *wire.Event) {
	c.disp.Deliver(ev.ToSync(c.name, c.zone, c.region))
}

// PublishAndAwait publishes an invalidation of key and returns once
// replicas other nodes (<= 0 means 1) have applied it. When the nodes known
// alive cannot provide that many it fails at once, without sending;
// otherwise it waits until satisfied, until the alive nodes can no longer
// satisfy it, or until ctx ends (Config.AckTimeout when ctx has no
// deadline). Failures are *syncbus.QuorumError values matching
// syncbus.ErrQuorumNotSatisfied.
func (c *Core) PublishAndAwait(ctx context.Context, key string, replicas int, opts ...syncbus.PublishOption) error {
	return c.publishAwait(ctx, key, syncbus.QuorumReplicas, replicas, opts)
}

// PublishAndAwaitTopology publishes an invalidation of key and returns once
// it was applied in minZones zones (<= 0 means 1), this node's own
// included, honouring syncbus.WithZoneQuorum. Failures are as for
// PublishAndAwait.
func (c *Core) PublishAndAwaitTopology(ctx context.Context, key string, minZones int, opts ...syncbus.PublishOption) error {
	return c.publishAwait(ctx, key, syncbus.QuorumZones, minZones, opts)
}

func (c *Core) publishAwait(ctx context.Context, key string, kind syncbus.QuorumKind, required int, opts []syncbus.PublishOption) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := syncbus.ValidateKey(key); err != nil {
		return err
	}
	o := syncbus.ApplyPublishOptions(opts...)
	zq := 0
	if kind == syncbus.QuorumZones {
		zq = o.ZoneQuorum
	}
	counter, err := c.cfg.Quorum(c.name, c.peers.snapshot(c), kind, required, zq)
	if err != nil {
		c.c.awaitFailFast.Add(1)
		c.c.awaitFailed.Add(1)
		return err
	}
	if err := ctx.Err(); err != nil {
		c.c.awaitFailed.Add(1)
		return counter.Outcome(err, nil)
	}
	ev, err := c.newEvent(key, syncbus.OpInvalidate, &o)
	if err != nil {
		c.c.publishErrors.Add(1)
		return err
	}
	ev.Flags = wire.EventAckWanted
	if err := c.waitRoom(ctx); err != nil {
		c.c.awaitFailed.Add(1)
		return counter.Outcome(err, nil)
	}
	c.c.published.Add(1)
	c.deliverLocal(&ev)

	start := time.Now()
	a := &await{counter: counter, done: make(chan struct{})}
	if err := c.out.enqueue(ctx, &ev, a); err != nil {
		c.c.awaitFailed.Add(1)
		return counter.Outcome(err, nil)
	}
	defer c.awaits.remove(a.seq)
	c.awaits.decideNow(a) // the publisher's own zone may be all that was asked

	timeout := c.cfg.AckTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var cause error
	select {
	case <-a.done:
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = context.DeadlineExceeded
	case <-c.done:
		cause = syncbus.ErrClosed
	case <-c.down:
		cause = *c.failed.Load()
	}
	if err := c.awaits.finish(a, cause, o.AckReport); err != nil {
		c.c.awaitFailed.Add(1)
		return err
	}
	c.c.awaitOK.Add(1)
	d := time.Since(start)
	c.ackLat.Observe(d)
	c.cfg.Recorder.AckLatency(kind, d)
	return nil
}

// Relay republishes an event received elsewhere (by a gateway), keeping its
// ID, Origin, Zone, Region, Scope, Op, VectorClock and Time. Every node of
// the bus, this one included, delivers it once: a node drops an ID its
// dedupe window holds, and a Relay of an ID this node holds already
// returns nil and sends nothing (see the relay semantics of package
// syncbus).
func (c *Core) Relay(ctx context.Context, ev syncbus.Event) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := syncbus.ValidateRelayed(ev); err != nil {
		return c.countErr(err)
	}
	if err := ctx.Err(); err != nil {
		return c.countErr(err)
	}
	if c.relayed.Seen(ev.ID) {
		c.c.duplicates.Add(1)
		return nil
	}
	w := wire.FromSync(&ev, c.name, c.zone, c.region)
	w.Flags = wire.EventRelayed
	if err := c.checkFits(&w); err != nil {
		c.c.publishErrors.Add(1)
		return err
	}
	c.c.published.Add(1)
	c.c.relayed.Add(1)
	c.disp.Deliver(ev)
	return c.countErr(c.out.enqueue(ctx, &w, nil))
}

// Relayed reports whether the event with this ID reached this node through
// Relay (here or on another node) rather than from a publisher of this bus,
// as far as the node's dedupe window (WithDedupeWindow) remembers.
func (c *Core) Relayed(id syncbus.EventID) bool {
	if c.err != nil {
		return false
	}
	return c.relayed.Contains(id)
}

// Subscribe returns a channel receiving the invalidations of key; see
// syncbus.Dispatcher.Subscribe.
func (c *Core) Subscribe(ctx context.Context, key string) (<-chan syncbus.Event, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.disp.Subscribe(ctx, key)
}

// Unsubscribe ends the subscription ch of key and closes ch.
func (c *Core) Unsubscribe(_ context.Context, key string, ch <-chan syncbus.Event) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.disp.Unsubscribe(key, ch)
}

// SubscribePrefix returns a channel receiving the invalidations of every
// key that starts with prefix ("" for every key).
func (c *Core) SubscribePrefix(ctx context.Context, prefix string) (<-chan syncbus.Event, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.disp.SubscribePrefix(ctx, prefix)
}

// UnsubscribePrefix ends the prefix subscription ch and closes ch.
func (c *Core) UnsubscribePrefix(_ context.Context, prefix string, ch <-chan syncbus.Event) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.disp.UnsubscribePrefix(prefix, ch)
}

// SubscribeLease returns a channel receiving the revocations of lease id.
func (c *Core) SubscribeLease(ctx context.Context, id string) (<-chan syncbus.Event, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.disp.SubscribeLease(ctx, id)
}

// UnsubscribeLease ends the lease subscription ch and closes ch.
func (c *Core) UnsubscribeLease(_ context.Context, id string, ch <-chan syncbus.Event) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.disp.UnsubscribeLease(id, ch)
}

// SubscribeAll returns a channel receiving every event this node delivers,
// lease revocations and relayed events included (what a gateway reads).
func (c *Core) SubscribeAll(ctx context.Context) (<-chan syncbus.Event, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.disp.SubscribeAll(ctx)
}

// UnsubscribeAll ends the all-events subscription ch and closes ch.
func (c *Core) UnsubscribeAll(_ context.Context, ch <-chan syncbus.Event) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.disp.UnsubscribeAll(ch)
}

// Close announces the node's departure, sends what was published before
// it, stops the core's goroutines and closes every subscription channel.
// It waits at most about two seconds (times TimeScale) for the broker.
// Afterwards every method returns syncbus.ErrClosed (Metrics keeps
// working); a second call returns nil. It does not touch the broker
// client: the bridge that owns the Core stops its own receivers after it.
func (c *Core) Close() error {
	if c.err != nil || !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.done)
	c.wg.Wait()
	c.disp.Close()
	c.log.Debug("bridge: closed")
	return nil
}

// closeTimeout bounds what Close waits for the broker.
func (c *Core) closeTimeout() time.Duration {
	return min(c.cfg.SendTimeout, time.Duration(float64(2*time.Second)*c.cfg.TimeScale))
}

// Done returns a channel closed when Close starts.
func (c *Core) Done() <-chan struct{} { return c.done }

// AddKey installs another secret key: frames sealed with it are accepted
// from now on. Keys rotate with no downtime as on the mesh: AddKey the new
// key on every bus, then UseKey it on every bus, then RemoveKey the old
// one. The same key file can serve a mesh node and its bridge.
func (c *Core) AddKey(key []byte) error { return c.keyChange(c.keyring.AddKey, key) }

// UseKey makes an installed key the one this bus seals with.
func (c *Core) UseKey(key []byte) error { return c.keyChange(c.keyring.UseKey, key) }

// RemoveKey uninstalls a key that is not the primary one.
func (c *Core) RemoveKey(key []byte) error { return c.keyChange(c.keyring.RemoveKey, key) }

func (c *Core) keyChange(change func([]byte) error, key []byte) error {
	if c.err != nil {
		return c.err
	}
	if c.closed.Load() {
		return syncbus.ErrClosed
	}
	if err := change(key); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	return nil
}

// Receive handles one message the broker delivered: a frame of this bus,
// or anything else, which is dropped and counted. reply is where the
// transport would send acknowledgements of its events (see
// Transport.Ack). data is not retained.
func (l *Link) Receive(data []byte, reply string) { l.c.receive(data, reply) }

// Disconnected tells the core that the connection to the broker broke:
// events may be missed until it comes back, which Reconnected reports.
func (l *Link) Disconnected(err error) {
	c := l.c
	if c.connected.CompareAndSwap(true, false) {
		c.log.Warn("bridge: lost the broker; the client reconnects", "err", err)
	}
	c.recv.disconnected()
}

// Reconnected tells the core that the connection is back and its
// subscriptions are live again: every subscription receives one resync
// (pub/sub has no replay), and the node announces itself at once.
func (l *Link) Reconnected() {
	c := l.c
	c.connected.Store(true)
	c.recv.resynced()
	c.c.reconnects.Add(1)
	n := c.disp.Resync("")
	c.log.Info("bridge: reconnected to the broker; subscriptions resynced", "subscriptions", n)
	c.peers.announceSoon()
}

// Lost tells the core that the transport dropped messages it cannot name
// (a NATS slow consumer, say): every subscription receives one resync.
func (l *Link) Lost(reason string) {
	c := l.c
	c.recv.resynced()
	c.c.drop(reason)
	n := c.disp.Resync("")
	c.log.Warn("bridge: the broker client dropped messages; subscriptions resynced", "reason", reason, "subscriptions", n)
}

// Failed tells the core that the client gave up for good: the bus becomes
// unhealthy, awaiting calls fail, and every later call returns an error
// matching ErrUnavailable and wrapping err.
func (l *Link) Failed(err error) {
	c := l.c
	c.downOnce.Do(func() {
		e := fmt.Errorf("%w: %w", ErrUnavailable, err)
		c.failed.Store(&e)
		c.connected.Store(false)
		close(c.down)
		if !c.closed.Load() {
			c.log.Error("bridge: the broker client gave up; the bus is unusable", "err", err)
		}
	})
}

// SetAcking makes the node acknowledge the events it delivers (true, the
// default) or not: tests use it to reach awaiting calls' deadlines.
func (l *Link) SetAcking(on bool) { l.c.muted.Store(!on) }

// Name returns the node's name.
func (l *Link) Name() string { return l.c.name }

// Boot returns the node's incarnation, random per Core.
func (l *Link) Boot() uint64 { return l.c.boot }

// Logger returns the core's logger, for the transport's own logs.
func (l *Link) Logger() *slog.Logger { return l.c.log }

// refuse counts input dropped for reason and logs it at most once a
// second, so a flood of foreign messages cannot flood the log.
func (c *Core) refuse(reason string, err error) {
	c.c.drop(reason)
	now := time.Now().UnixNano()
	last := c.lastRefusal.Load()
	if now-last < int64(time.Second) || !c.lastRefusal.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("bridge: dropped a message (at most one such log a second)", "reason", reason, "err", err)
}
