package membership

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/syncbus"
)

// Membership is one node's view of its cluster: memberlist behind a small
// API. It joins the seeds and keeps rejoining them, announces the node's
// zone, region and boot ID, keeps a snapshot of the members and reports
// their changes as events.
//
// A Membership is safe for concurrent use.
type Membership struct {
	cfg   Config // validated
	log   *limitedLog
	tr    Transport
	ml    *memberlist.Memberlist
	state *stateReader // nil when memberlist's layout is not the expected one
	keys  *keySync     // nil without a keyring
	disc  *discovery   // nil without Config.Group
	notes *noteQueue
	// contacts are the addresses Contact asked to exchange state with.
	contacts *contactQueue

	snap    atomic.Pointer[Snapshot]
	events  chan Event
	changed chan struct{} // one slot: a new snapshot was published

	self netip.AddrPort // the advertised address, fixed

	// Owned by the loop goroutine (and by Close once the loop has exited).
	local   Node
	members map[string]Node
	version uint64
	// unsent are the events of changes not yet in the published
	// snapshot: publish hands them to the reader after storing it.
	unsent []Event

	leftLocal atomic.Bool // the local node has left

	failedMu sync.Mutex
	failed   []downAddr // recently failed members, for rejoining

	ctx    context.Context // cancelled by Close: ends DNS look-ups
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup

	// mlMu serializes memberlist's Leave and Shutdown: memberlist panics on
	// a Leave after Shutdown.
	mlMu      sync.Mutex
	mlDown    bool
	closed    atomic.Bool
	closeOnce sync.Once

	eventsDropped atomic.Uint64
	badMeta       atomic.Uint64
	joinAttempts  atomic.Uint64
	joinFailures  atomic.Uint64
	rejoined      atomic.Uint64
	polls         atomic.Uint64 // rounds of poll, for tests that watch a while

	lookup lookupFunc // resolves seed host names
}

// downAddr is the address of a member that failed, kept for rejoining.
type downAddr struct {
	name string
	addr netip.AddrPort
	at   time.Time
}

// Stats are a Membership's counters since New.
type Stats struct {
	// EventsDropped counts events dropped because Events was full.
	EventsDropped uint64
	// BadMetadata counts peers' announcements left out of the topology
	// because their metadata could not be read or named a protocol version
	// this node does not speak.
	BadMetadata uint64
	// JoinAttempts counts addresses this node tried to join (seeds at
	// start, then seeds and failed members while rejoining);
	// JoinFailures counts the attempts that reached nobody.
	JoinAttempts uint64
	JoinFailures uint64
	// Rejoined counts successful joins made by rejoining, after the
	// initial join.
	Rejoined uint64
	// LogSuppressed counts log lines held back by the rate limit.
	LogSuppressed uint64
	// Contacted counts the state exchanges Contact asked for that
	// reached the node; ContactsDropped the requests a full queue refused.
	Contacted, ContactsDropped uint64
}

// New starts a node: it binds the transport (unless Config.Transport is
// given), starts memberlist and returns. Joining the seeds happens in the
// background, with retries: an unreachable seed is logged, never an error
// of New. If New fails, everything it started is stopped again, the given
// Transport included.
func New(cfg Config) (*Membership, error) {
	tr := cfg.Transport
	fail := func(err error) (*Membership, error) {
		if tr != nil {
			_ = tr.Shutdown()
		}
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return fail(err)
	}
	boot, err := randomBoot()
	if err != nil {
		return fail(err)
	}
	started := time.Now()
	meta := appendMeta(nil, nodeMeta{Zone: cfg.Zone, Region: cfg.Region, Boot: boot, Proto: ProtocolVersion, Started: started.UnixNano()})
	if cfg.metaOverride != nil {
		meta = cfg.metaOverride
	}
	if len(meta) > memberlist.MetaMaxSize {
		return fail(fmt.Errorf("%w: %d bytes (zone %d, region %d), memberlist allows %d",
			ErrMetaTooLarge, len(meta), len(cfg.Zone), len(cfg.Region), memberlist.MetaMaxSize))
	}
	mlKeys, err := newMemberlistKeyring(cfg.Keyring)
	if err != nil {
		return fail(fmt.Errorf("membership: gossip keyring: %w", err))
	}
	if tr == nil {
		nt, err := NewNetTransport(NetConfig{BindAddr: cfg.BindAddr, BindPort: cfg.BindPort, Logger: cfg.Logger})
		if err != nil {
			return fail(err)
		}
		tr = nt
	}
	advIP, advPort, err := tr.FinalAdvertiseAddr(cfg.AdvertiseAddr, cfg.AdvertisePort)
	if err != nil {
		return fail(fmt.Errorf("membership: advertise address: %w", err))
	}
	adv, ok := netip.AddrFromSlice(advIP)
	if !ok || advPort <= 0 || advPort > 65535 {
		return fail(fmt.Errorf("%w: transport advertises %v port %d", ErrConfig, advIP, advPort))
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := &Membership{
		cfg:      cfg,
		log:      newLimitedLog(cfg.Logger, cfg.LogRate, cfg.LogBurst),
		tr:       tr,
		notes:    newNoteQueue(),
		contacts: newContactQueue(),
		events:   make(chan Event, cfg.EventBuffer),
		changed:  make(chan struct{}, 1),
		members:  make(map[string]Node),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		lookup:   cfg.lookup,
		local: Node{
			Name:    cfg.Name,
			Zone:    cfg.Zone,
			Region:  cfg.Region,
			Addr:    netip.AddrPortFrom(adv.Unmap(), uint16(advPort)),
			Boot:    boot,
			Proto:   ProtocolVersion,
			State:   syncbus.MemberAlive,
			Since:   started,
			Started: started,
		},
	}
	m.self = m.local.Addr
	if m.lookup == nil {
		m.lookup = systemLookup
	}
	d := &delegate{meta: meta, notes: m.notes}
	ml, err := memberlist.Create(m.memberlistConfig(advPort, mlKeys, d))
	if err != nil {
		cancel()
		return fail(fmt.Errorf("membership: start memberlist: %w", err))
	}
	m.ml = ml
	if m.state, err = newStateReader(ml); err != nil {
		m.log.Log(slog.LevelWarn, "membership: cannot read memberlist's node states; suspect members are not reported and departed ones are reported failed", "err", err)
		m.state = nil
	}
	if cfg.Keyring != nil {
		m.keys = &keySync{src: cfg.Keyring, dst: mlKeys, log: m.log}
		cfg.Keyring.Watch(m.keys.sync)
		m.keys.sync() // catch a change made before Watch took effect
	}
	if cfg.Group != "" {
		if m.disc, err = newDiscovery(m); err != nil {
			m.shutdown(false)
			return nil, err
		}
	}
	m.publish()

	m.wg.Add(3)
	go m.run()
	go m.joinLoop()
	go m.contactLoop()
	if m.disc != nil {
		m.disc.start()
	}
	return m, nil
}

// memberlistConfig translates the validated Config for memberlist.
func (m *Membership) memberlistConfig(advPort int, keys *memberlist.Keyring, d *delegate) *memberlist.Config {
	c := m.cfg
	mc, _ := profileConfig(c.Profile) // validated
	mc.Name = c.Name
	mc.Transport = m.tr
	mc.Label = c.Label
	mc.BindAddr = c.BindAddr
	mc.BindPort = advPort // memberlist's default port for addresses without one
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort // 0: the transport's bound port
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.TCPTimeout
	mc.EnableCompression = c.GossipCompression
	mc.DeadNodeReclaimTime = max(c.DeadNodeReclaimTime, 0) // memberlist: 0 = never
	mc.QueueCheckInterval = scale(mc.QueueCheckInterval, c.TimeScale)
	// memberlist gossips each membership change RetransmitMult·log10(n+1)
	// times to random peers; the local profile's 2 leaves a node of a small
	// cluster unaware of a newcomer now and then until the next full state
	// exchange (15 s), and the data plane sends nothing to a node it does
	// not know. 4 (the lan profile's) reaches everyone in practice.
	mc.RetransmitMult = max(mc.RetransmitMult, minRetransmitMult)
	mc.Keyring = keys
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.Delegate = d
	mc.Events = d
	mc.LogOutput = nil
	mc.Logger = log.New(mlLogWriter{out: m.log}, "", 0)
	return mc
}

func randomBoot() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("membership: boot ID: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// Name returns the local node's name.
func (m *Membership) Name() string { return m.cfg.Name }

// Local returns the local node as it is announced.
func (m *Membership) Local() Node { return m.Snapshot().Local }

// Snapshot returns the current view of the cluster. It is cheap: the
// snapshot is built when something changes, not when it is read. After
// Close it returns the last view.
func (m *Membership) Snapshot() *Snapshot { return m.snap.Load() }

// Members returns the members of the current snapshot as syncbus.Members.
func (m *Membership) Members() []syncbus.Member { return m.Snapshot().Members() }

// Events returns the channel of member changes. It has the capacity
// Config.EventBuffer; when the reader falls behind, events are dropped and
// counted (Stats.EventsDropped) rather than slowing memberlist down, so a
// reader that needs the full picture reads Snapshot. An event is sent
// once the snapshot that shows its change is published: Snapshot (and
// Members) read on an event include it. The channel is closed by Close.
func (m *Membership) Events() <-chan Event { return m.events }

// Changed returns a channel that receives a value after a new snapshot
// was published, for the one reader that keeps a view of its own in step
// (the mesh's event loop): signals coalesce, so read Snapshot after each.
// It is never closed.
func (m *Membership) Changed() <-chan struct{} { return m.changed }

// Transport returns the transport the node runs on, for the data plane.
func (m *Membership) Transport() Transport { return m.tr }

// Stats returns the node's counters.
func (m *Membership) Stats() Stats {
	return Stats{
		EventsDropped:   m.eventsDropped.Load(),
		BadMetadata:     m.badMeta.Load(),
		JoinAttempts:    m.joinAttempts.Load(),
		JoinFailures:    m.joinFailures.Load(),
		Rejoined:        m.rejoined.Load(),
		LogSuppressed:   m.log.Suppressed(),
		Contacted:       m.contacts.contacted.Load(),
		ContactsDropped: m.contacts.dropped.Load(),
	}
}

// Leave announces that the node leaves the cluster and waits, at most
// timeout (Config.LeaveTimeout if timeout <= 0), for the announcement to be
// gossiped. Peers then report the node as left rather than failed. The node stops rejoining but
// keeps running until Close. Leaving twice is a no-op; after Close, Leave
// returns syncbus.ErrClosed.
func (m *Membership) Leave(timeout time.Duration) error {
	if m.closed.Load() {
		return syncbus.ErrClosed
	}
	if timeout <= 0 {
		timeout = m.cfg.LeaveTimeout
	}
	return m.leave(timeout)
}

func (m *Membership) leave(timeout time.Duration) error {
	m.mlMu.Lock()
	defer m.mlMu.Unlock()
	if m.mlDown {
		return syncbus.ErrClosed
	}
	if m.leftLocal.Load() {
		return nil
	}
	start := time.Now()
	err := m.ml.Leave(timeout)
	m.leftLocal.Store(true) // memberlist considers itself left either way
	m.notes.push(note{kind: noteLocal})
	if err != nil {
		return fmt.Errorf("%w after %v: %w", ErrLeaveTimeout, timeout, err)
	}
	m.pushLeave(timeout - time.Since(start))
	return nil
}

// minRetransmitMult is the least memberlist RetransmitMult used.
const minRetransmitMult = 4

// leavePushTargets bounds how many alive members a leaving node tells
// directly.
const leavePushTargets = 4

// pushLeave tells a few alive members directly that this node left, by a
// state exchange over TCP, within budget. memberlist's Leave returns once
// its "left" message was handed to gossip a few times, and after peers
// failed, those few copies often go to dead nodes (memberlist gossips to
// the dead for a while), or are still unsent when the node shuts down: the
// live members then never hear of the leave and declare the node failed.
// A direct exchange carries our state — "left" — to them for sure; they
// spread it.
func (m *Membership) pushLeave(budget time.Duration) {
	if budget <= 0 {
		return
	}
	var targets []string
	for _, n := range m.Snapshot().Alive() {
		if n.Name == m.cfg.Name || !n.Addr.IsValid() {
			continue
		}
		if targets = append(targets, n.Addr.String()); len(targets) == leavePushTargets {
			break
		}
	}
	if len(targets) == 0 {
		return
	}
	done := make(chan struct{})
	m.wg.Add(1) // shutdown waits for it; shutting memberlist down ends its exchanges
	go func() {
		defer m.wg.Done()
		defer close(done)
		for _, t := range targets {
			_, _ = m.ml.Join([]string{t}) // a push of our state; a failure only costs time
		}
	}()
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// Close leaves the cluster (bounded by Config.LeaveTimeout) unless the
// node has left already, shuts memberlist and the transport down, stops
// every goroutine of the Membership and closes Events. It is idempotent.
func (m *Membership) Close() error {
	m.shutdown(true)
	return nil
}

// shutdown stops the node; without leave it plays a crash: peers see the
// node stop answering.
func (m *Membership) shutdown(leave bool) {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		if leave {
			if err := m.leave(m.cfg.LeaveTimeout); err != nil && !errors.Is(err, syncbus.ErrClosed) {
				m.log.Log(slog.LevelInfo, "membership: leaving on close", "err", err)
			}
		}
		if m.keys != nil {
			m.keys.stop()
		}
		m.cancel()
		m.mlMu.Lock()
		if err := m.ml.Shutdown(); err != nil {
			m.log.Log(slog.LevelWarn, "membership: memberlist shutdown", "err", err)
		}
		m.mlDown = true
		m.mlMu.Unlock()
		close(m.done)
		if m.disc != nil {
			m.disc.close() // ends its reader; its other goroutines end with done
		}
		m.wg.Wait()
		// The loop has exited: apply what it left, so that the last
		// snapshot shows the node's own departure.
		m.applyNotes(time.Now())
		close(m.events)
		m.log.flush()
	})
}
