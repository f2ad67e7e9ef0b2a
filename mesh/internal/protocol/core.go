package protocol

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// Core is the mesh protocol of one node, as a state machine: no I/O, no
// goroutines, no clock. See the package documentation for the caller's
// duties. A Core is not safe for concurrent use: one goroutine owns it.
type Core struct {
	cfg  Config
	t    Timings // cfg.Timings, scaled
	self Member
	view *view

	// Sending: numbering, the repair ring, events held by flow control,
	// awaited publishes, digests.
	seq         uint64 // the last number assigned
	ring        *ring
	pending     []wire.Event // pending[pendHead:] wait for credit
	pendHead    int
	spread      uint64 // rotates the relays of successive batches
	lastSend    time.Time
	digestSeq   uint64    // the seq the digest rounds announce
	digestRound int       // digest rounds sent for digestSeq
	lastArrival time.Time // when a node last entered the view (ViewSettle)
	flow        flowState
	awaits      map[uint64]*await // by the caller's ID
	awaitBySeq  map[uint64]*await
	rtts        map[string]*rtt
	muted       bool

	// Receiving: one window per origin incarnation, the gapped ones, the
	// ones owed credit, and incarnations forgotten with their windows.
	windows map[originKey]*window
	gapped  map[originKey]*window
	owed    map[originKey]*window
	// strangers are senders the view did not list, when last reported.
	strangers map[netip.AddrPort]time.Time
	// digestVia is sendDigests' scratch list of relays.
	digestVia      []digestRelay
	forgotten      map[originKey]bool
	forgottenOrder []originKey
	room           int // free room of the subscriptions, as last told
	roomUsed       int // events delivered since
	active         int // origins that sent within Timings.Activity
	// tickCredit's bookkeeping (see there): when active may next change
	// (valid false: recount at the next tick); the share the owed origins
	// were last looked at with, whether one must be looked at again at the
	// next tick, and when the first keepalive or expiry among them is due.
	activeCheckAt time.Time
	activeValid   bool
	owedShare     int
	owedRecheck   bool
	owedNextAt    time.Time
	agg           aggregator
	hold          time.Duration // the relay hold computed last
	relayed       *syncbus.DedupeWindow

	// Decoding scratch, reused frame to frame.
	events     wire.Events
	acks       wire.Acks
	repair     wire.RepairRequest
	unavail    wire.Unavailable
	digest     wire.Digest
	credit     wire.Credit
	ranges     []wire.SeqRange
	names      []string
	seqScratch []uint64

	rd        Ready
	addrArena []netip.AddrPort
	evArena   []wire.Event
	seqArena  []uint64
	ackArena  []wire.Ack
	next      time.Time // the earliest time a Tick is due; zero when none
	closed    bool

	stats Stats
}

// originKey names one incarnation of a node that numbers events.
type originKey struct {
	name string
	boot uint64
}

// Ready is what the caller must do after a call into the Core, in this
// order: hand Deliveries to the local subscriptions, then give every
// subscription a resync for each origin in Resyncs, then send Messages,
// then report Outcomes and FlowStalls. Acknowledgements are among the
// Messages, so doing the deliveries first is what makes an ack mean
// "applied". Everything in it is owned by the Core and valid until Advance.
type Ready struct {
	Deliveries []syncbus.Event
	Resyncs    []string
	Messages   []Message
	Outcomes   []Outcome
	// FlowStalls are the durations of the flow-control stalls that ended.
	FlowStalls []time.Duration
	// Strangers are the addresses that sent frames but are not members in
	// the view: news of nodes the membership missed. The caller should ask
	// the membership to exchange state with them.
	Strangers []netip.AddrPort
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Deliveries) == 0 && len(r.Resyncs) == 0 && len(r.Messages) == 0 &&
		len(r.Outcomes) == 0 && len(r.FlowStalls) == 0 && len(r.Strangers) == 0
}

// Traffic says how a frame is accounted.
type Traffic uint8

const (
	// TrafficData is events and acknowledgements.
	TrafficData Traffic = iota
	// TrafficRepair is what repairs losses: repair requests and their
	// answers, retransmissions, digests.
	TrafficRepair
	// TrafficControl is flow-control credit.
	TrafficControl
)

// Message is one frame to send to every address of To: the caller encodes
// it (events may need several datagrams), seals it once and sends it to
// each. Type says which of the frame fields holds it.
type Message struct {
	To      []netip.AddrPort
	Traffic Traffic
	Type    wire.FrameType

	Events      wire.Events
	Acks        wire.Acks
	Repairs     wire.RepairRequest
	Unavailable wire.Unavailable
	Digest      wire.Digest
	Credit      wire.Credit
}

// Outcome is the end of an awaited publish: Err is nil when it was
// satisfied (Report then says who acked, if asked for), or a
// *syncbus.QuorumError.
type Outcome struct {
	ID     uint64
	Err    error
	Report syncbus.AckReport
	// FailFast is true when it ended at once, without sending.
	FailFast bool
	// Latency is the time from the publish to the outcome.
	Latency time.Duration
}

// Stats are a Core's counters since New.
type Stats struct {
	Duplicates     uint64
	AcksSent       uint64
	AcksReceived   uint64
	StaleAcks      uint64
	Retransmits    uint64
	RepairRequests uint64
	Relayed        uint64
	Resyncs        uint64 // resync decisions (each reaches every subscription)
	PendingAwaits  int
	Pending        int

	FlowStalls    uint64
	FlowStallTime time.Duration
	FlowReleased  uint64
	CreditsSent   uint64
	// Strangers counts the senders reported in Ready.Strangers.
	Strangers uint64
	// Released counts the alive receivers this node sends to now without
	// waiting for their credit (they stalled it, or are suspect).
	Released int

	// Drops counts frames refused by reason, the wire decoding reasons
	// excepted (Step returns those as errors).
	Drops map[string]uint64
}

// New returns the Core of one node.
func New(cfg Config) (*Core, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Boot == 0 {
		return nil, fmt.Errorf("protocol: invalid config: Boot is 0")
	}
	c := &Core{
		cfg:        cfg,
		t:          cfg.Timings,
		self:       Member{Name: cfg.Name, Zone: cfg.Zone, Region: cfg.Region, Boot: cfg.Boot, State: syncbus.MemberAlive},
		ring:       newRing(cfg.RepairBuffer),
		awaits:     make(map[uint64]*await),
		awaitBySeq: make(map[uint64]*await),
		rtts:       make(map[string]*rtt),
		windows:    make(map[originKey]*window),
		gapped:     make(map[originKey]*window),
		owed:       make(map[originKey]*window),
		relayed:    cfg.Relayed,
		room:       cfg.Window,
		hold:       cfg.Timings.RelayHold,
	}
	c.flow.init()
	c.agg.init()
	v, err := newView(c.self, nil, cfg.Fanout, cfg.RelayThreshold, nil, 0)
	if err != nil {
		return nil, err
	}
	c.view = v
	return c, nil
}

// Name returns the node's name.
func (c *Core) Name() string { return c.cfg.Name }

// Ready returns what the caller must do now (see Ready). Call Advance once
// it is done.
func (c *Core) Ready() *Ready { return &c.rd }

// HasReady reports whether Ready holds anything.
func (c *Core) HasReady() bool { return !c.rd.Empty() }

// Advance clears Ready, after the caller acted on it.
func (c *Core) Advance() {
	clear(c.rd.Deliveries)
	c.rd.Deliveries = c.rd.Deliveries[:0]
	c.rd.Resyncs = c.rd.Resyncs[:0]
	for i := range c.rd.Messages {
		c.rd.Messages[i] = Message{}
	}
	c.rd.Messages = c.rd.Messages[:0]
	clear(c.rd.Outcomes)
	c.rd.Outcomes = c.rd.Outcomes[:0]
	c.rd.FlowStalls = c.rd.FlowStalls[:0]
	c.rd.Strangers = c.rd.Strangers[:0]
	c.addrArena = c.addrArena[:0]
	clear(c.evArena)
	c.evArena = c.evArena[:0]
	c.seqArena = c.seqArena[:0]
	clear(c.ackArena)
	c.ackArena = c.ackArena[:0]
}

// NextTick returns when the Core next needs a Tick: zero when nothing is
// scheduled. It may be in the past (tick at once).
func (c *Core) NextTick() time.Time { return c.next }

// wake makes sure a Tick is due no later than t.
func (c *Core) wake(t time.Time) {
	if c.next.IsZero() || t.Before(c.next) {
		c.next = t
	}
}

// SetMuted makes the node stop acknowledging events (it keeps delivering
// and relaying, and forwards its zone peers' acks): tests use it to play a
// node that never acks.
func (c *Core) SetMuted(muted bool) { c.muted = muted }

// SetRoom tells the Core how many more events its subscriptions can take
// now without losing any (the least room of any bounded subscription;
// math.MaxInt32 or more when none is bounded). The Core grants the origins
// of events credit from it (see the package documentation).
func (c *Core) SetRoom(n int) {
	c.room, c.roomUsed = max(n, 0), 0
}

// Pending returns how many published events wait for flow-control credit.
func (c *Core) Pending() int { return len(c.pending) - c.pendHead }

// Stats returns the Core's counters. The Drops map is a copy.
func (c *Core) Stats() Stats {
	s := c.stats
	s.PendingAwaits = len(c.awaits)
	s.Pending = c.Pending()
	for _, r := range c.flow.recv {
		if r.released {
			s.Released++
		}
	}
	if len(c.stats.Drops) > 0 {
		s.Drops = make(map[string]uint64, len(c.stats.Drops))
		for k, v := range c.stats.Drops {
			s.Drops[k] = v
		}
	}
	return s
}

// drop counts a frame refused for reason.
func (c *Core) drop(reason string) {
	if c.stats.Drops == nil {
		c.stats.Drops = make(map[string]uint64)
	}
	c.stats.Drops[reason]++
}

// addrs copies as into the arena, for a Message's To.
func (c *Core) addrs(as ...netip.AddrPort) []netip.AddrPort {
	start := len(c.addrArena)
	c.addrArena = append(c.addrArena, as...)
	return c.addrArena[start:len(c.addrArena):len(c.addrArena)]
}

// send queues a message; it returns a pointer to fill in.
func (c *Core) send(typ wire.FrameType, traffic Traffic, to ...netip.AddrPort) *Message {
	c.rd.Messages = append(c.rd.Messages, Message{To: c.addrs(to...), Traffic: traffic, Type: typ})
	return &c.rd.Messages[len(c.rd.Messages)-1]
}

// PendingLimit returns Config.PendingLimit: the caller stops publishing
// into the Core while Pending reaches it.
func (c *Core) PendingLimit() int { return c.cfg.PendingLimit }

// Topology returns the topology of the current view (immutable: it may be
// shared with other goroutines, for example to fail fast before calling
// Await).
func (c *Core) Topology() *zones.Topology { return c.view.topo }

// Mode returns the fanout in use.
func (c *Core) Mode() zones.Mode { return c.view.mode }

// IsRemote reports whether addr is a known node of another zone, for
// accounting traffic by zone.
func (c *Core) IsRemote(addr netip.AddrPort) bool {
	p, ok := c.view.byAddr[addr]
	return ok && p.Zone != c.self.Zone
}

// SetMembers applies a membership change: awaits learn who is alive,
// windows of incarnations gone for good are dropped (their gaps resynced),
// nodes that came (back) get a digest, flow control follows the alive
// receivers. members may include this node; its own entry is ignored.
func (c *Core) SetMembers(now time.Time, members []Member) error {
	v, err := newView(c.self, members, c.cfg.Fanout, c.cfg.RelayThreshold, c.view, c.seq)
	if err != nil {
		return fmt.Errorf("protocol: membership: %w", err)
	}
	prev := c.view
	for _, p := range v.alive {
		if p.fresh {
			p.joinSeq = c.joinPoint(p.Started, p.joinSeq)
		}
	}
	c.view = v
	for _, p := range v.alive {
		if p.arrived {
			c.lastArrival = now
			break
		}
	}
	c.forgetStrangers()
	c.awaitsSetTopology(now)
	c.dropGoneWindows(now, prev)
	c.flow.setView(c, v)
	// Tell newcomers where this node's numbering stood when they joined:
	// their window for us starts there, so an event they miss from then on
	// is a gap they repair, not history from before them.
	if c.seq > 0 {
		for _, p := range v.alive {
			if p.arrived {
				c.sendDigest(p, c.seq, false)
			}
		}
	}
	c.flush(now)
	return nil
}

// joinPoint is the number after which a peer that started at started is
// owed this node's events. Gossip may tell this node of a newcomer late
// (or, in a lopsided view, very late), and meanwhile nothing was sent to
// it: it is owed what was numbered since it started, which the digest it
// gets announces and it repairs from the ring. Clocks of different hosts
// disagree a little, so the cut is Timings.JoinSkew earlier. When the ring
// no longer reaches back that far, the peer is owed everything, so that
// what it cannot get repaired is announced to it by a resync. now is the
// number to use when the peer's start is unknown.
func (c *Core) joinPoint(started time.Time, now uint64) uint64 {
	if started.IsZero() {
		return now
	}
	seq, whole := c.ring.before(started.Add(-c.t.JoinSkew))
	if !whole {
		return 0
	}
	return min(seq, now)
}

// Step handles one frame body received from the node at from: it decodes
// it and acts on it. A body that does not decode is an error matching
// wire.ErrMalformed (or wire.ErrTooLarge): the caller counts it and drops
// it; the Core's state is unchanged. Frames that decode but make no sense
// here (another node's repair request, a stale ack) are counted in
// Stats.Drops.
func (c *Core) Step(now time.Time, from netip.AddrPort, body []byte) (Traffic, error) {
	typ, err := wire.PeekType(body)
	if err != nil {
		return TrafficData, err
	}
	traffic := TrafficRepair
	switch typ {
	case wire.FrameEvents:
		if err = wire.DecodeEvents(body, &c.events); err == nil {
			if c.events.Flags&wire.FlagRetransmit == 0 {
				traffic = TrafficData
			}
			c.onEvents(now, from, &c.events)
		}
	case wire.FrameAcks:
		traffic = TrafficData
		if err = wire.DecodeAcks(body, &c.acks); err == nil {
			c.onAcks(now, from, &c.acks)
		}
	case wire.FrameRepairRequest:
		if err = wire.DecodeRepairRequest(body, &c.repair); err == nil {
			c.onRepairRequest(now, from, &c.repair)
		}
	case wire.FrameUnavailable:
		if err = wire.DecodeUnavailable(body, &c.unavail); err == nil {
			c.onUnavailable(now, &c.unavail)
		}
	case wire.FrameDigest:
		if err = wire.DecodeDigest(body, &c.digest); err == nil {
			c.onDigest(now, from, &c.digest)
		}
	case wire.FrameCredit:
		traffic = TrafficControl
		if err = wire.DecodeCredit(body, &c.credit); err == nil {
			c.onCredit(now, &c.credit)
		}
	default:
		c.drop("unexpected")
		return traffic, nil
	}
	if err == nil {
		c.noteStranger(now, from)
	}
	return traffic, err
}

// Tick runs the timers due at now: repair requests, retransmissions,
// deadlines of awaits, relay ack flushes, digests, credit polls and flow
// stalls.
func (c *Core) Tick(now time.Time) {
	c.next = time.Time{}
	c.repairGaps(now)
	c.tickAwaits(now)
	c.agg.tick(c, now)
	c.tickDigests(now)
	c.tickCredit(now)
	c.flow.tick(c, now)
	c.flush(now)
}

// Close ends the node's part: every await fails with syncbus.ErrClosed, and
// every alive node gets a last digest of this node's numbering, so that a
// node that missed the last events finds out now — and resyncs, since this
// node will not be there to repair them — rather than never.
func (c *Core) Close(now time.Time) {
	if c.closed {
		return
	}
	c.closed = true
	c.flush(now) // what was published before Close still leaves, credit or not
	c.agg.flushAll(c)
	for id, a := range c.awaits {
		c.finish(now, id, a, syncbus.ErrClosed)
	}
	if c.seq > 0 {
		for _, p := range c.view.alive {
			c.sendDigest(p, c.seq, false)
		}
	}
}
