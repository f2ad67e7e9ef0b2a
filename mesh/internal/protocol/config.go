package protocol

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Fanout says how an event reaches the other nodes.
type Fanout uint8

const (
	// FanoutAuto picks FanoutDirect up to Config.RelayThreshold alive
	// nodes and FanoutRelay above.
	FanoutAuto Fanout = iota
	// FanoutDirect sends every event from the publisher to every node.
	FanoutDirect
	// FanoutRelay sends every event to the publisher's zone and to one
	// relay per other zone, which fans it out in its zone.
	FanoutRelay
)

// Defaults of Config.
const (
	DefaultRelayThreshold = 12
	DefaultRepairBuffer   = 1 << 16
	// DefaultWindow is the most events a receiver lets one origin send
	// ahead of what it has received: its credit never exceeds it, and it
	// is the credit a publisher assumes for a receiver it has not heard
	// from yet.
	DefaultWindow = 1 << 14
	// DefaultPendingLimit bounds the events a core holds while receivers
	// have no credit.
	DefaultPendingLimit = 1 << 14
)

// Config configures a Core. Name and Boot are required; the zero value of
// every other field means its default.
type Config struct {
	// Name, Zone and Region are this node's; Boot is its incarnation (the
	// membership's boot ID).
	Name, Zone, Region string
	Boot               uint64

	// Fanout and RelayThreshold choose between direct and relay fanout.
	Fanout         Fanout
	RelayThreshold int
	// RepairBuffer is how many recent events are kept to repair gaps.
	RepairBuffer int
	// Window bounds the credit this node grants each origin, in events.
	Window int
	// InitialCredit is the credit a publisher assumes for a receiver it
	// has not heard from yet (until the receiver's first grant, one round
	// trip after its first events). A receiver whose subscriptions hold
	// fewer events can overflow on a first burst. Default Window/16.
	InitialCredit int
	// PendingLimit bounds the events Publish holds while receivers have no
	// credit; Pending tells the caller how many are held.
	PendingLimit int

	// TimeScale stretches every timing alike (0 means 1).
	TimeScale float64
	// Relayed remembers the IDs of events republished by gateways (marked
	// wire.EventRelayed), so that one relayed by several gateways is
	// delivered once. The caller may share it with its own relaying path;
	// nil means a window of syncbus.DefaultDedupeWindow IDs.
	Relayed *syncbus.DedupeWindow
	// Timings are the protocol's intervals before scaling; zero fields
	// take DefaultTimings' values.
	Timings Timings
}

// Timings are the intervals of the protocol. Retransmission and repair
// follow the measured round trip to each peer; these are its starting
// points and bounds.
type Timings struct {
	// RetransmitInitial is the wait before an awaited event is sent again
	// to a node whose round trip was never measured; RetransmitMin and
	// RetransmitMax bound the measured timeout (it doubles with each
	// attempt, up to RetransmitMax).
	RetransmitInitial time.Duration
	RetransmitMin     time.Duration
	RetransmitMax     time.Duration
	// NakDelay is how long a gap may stay open before it is reported:
	// events of one origin reach a node by more than one path (direct and
	// through a relay, or repaired), so a little reordering is normal.
	NakDelay time.Duration
	// NakBackoffMax bounds the wait between repair requests for one gap
	// (it starts at the origin's retransmission timeout and doubles).
	NakBackoffMax time.Duration
	// MaxNaks is how many repair requests a gap gets before it is given up
	// and the subscriptions are resynced.
	MaxNaks int
	// Digests are the idle times after the last sent event at which a node
	// announces its highest number to every other node, so that a lost
	// last event becomes a visible gap.
	Digests [3]time.Duration
	// RelayHold is how long a relay holds its zone peers' acks to forward
	// them in one datagram before it has measured their round trip; after
	// that the hold follows the slowest peer's round trip, between
	// RelayHoldMin and RelayHoldMax.
	RelayHold    time.Duration
	RelayHoldMin time.Duration
	RelayHoldMax time.Duration
	// CreditPoll is how often a receiver whose origins wait for its credit
	// looks again at its subscriptions' room.
	CreditPoll time.Duration
	// CreditKeepalive is how often it repeats an unchanged credit to an
	// origin that may be waiting for it (the last one may have been lost).
	CreditKeepalive time.Duration
	// StallTimeout is how long one receiver without credit may hold a
	// publisher back before the publisher goes on without it.
	StallTimeout time.Duration
	// Activity is how recently an origin must have sent for its share of
	// this node's room to be reserved.
	Activity time.Duration
	// JoinSkew is how much earlier than a newcomer's announced start a
	// node counts the events it owes the newcomer: room for the
	// disagreement of the two hosts' clocks.
	JoinSkew time.Duration
	// ViewSettle is how long after a node enters this node's view other
	// nodes may still not know it (gossip spreads a join in seconds;
	// memberlist's push/pull, every 30 s on LAN, repairs what it missed).
	// Meanwhile a relay's view may lack the newcomer, so the last digest
	// round after a burst goes to every node directly instead of through
	// the relays: an event a relay could not pass on then shows as a gap.
	ViewSettle time.Duration
}

// DefaultTimings returns the protocol's intervals at scale 1.
func DefaultTimings() Timings {
	return Timings{
		RetransmitInitial: 20 * time.Millisecond,
		RetransmitMin:     10 * time.Millisecond,
		RetransmitMax:     500 * time.Millisecond,
		NakDelay:          5 * time.Millisecond,
		NakBackoffMax:     200 * time.Millisecond,
		MaxNaks:           8,
		Digests:           [3]time.Duration{15 * time.Millisecond, 150 * time.Millisecond, time.Second},
		RelayHold:         2 * time.Millisecond,
		RelayHoldMin:      500 * time.Microsecond,
		RelayHoldMax:      50 * time.Millisecond,
		CreditPoll:        time.Millisecond,
		CreditKeepalive:   50 * time.Millisecond,
		StallTimeout:      time.Second,
		Activity:          time.Second,
		JoinSkew:          100 * time.Millisecond,
		ViewSettle:        30 * time.Second,
	}
}

// Scale returns d stretched by s (0 means 1), for every layer that shares
// the TimeScale setting.
func Scale(d time.Duration, s float64) time.Duration {
	if s == 0 || s == 1 {
		return d
	}
	f := float64(d) * s
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}

// CheckTimeScale reports a TimeScale that cannot be used.
func CheckTimeScale(s float64) error {
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return fmt.Errorf("TimeScale %v must be a finite number >= 0 (0 means 1)", s)
	}
	return nil
}

// Scaled returns t with zero fields filled from DefaultTimings and every
// interval stretched by s (0 means 1): what a Core with Config.TimeScale s
// runs on.
func (t Timings) Scaled(s float64) Timings {
	d := DefaultTimings()
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			v = def
		}
		return Scale(v, s)
	}
	out := Timings{
		RetransmitInitial: pick(t.RetransmitInitial, d.RetransmitInitial),
		RetransmitMin:     pick(t.RetransmitMin, d.RetransmitMin),
		RetransmitMax:     pick(t.RetransmitMax, d.RetransmitMax),
		NakDelay:          pick(t.NakDelay, d.NakDelay),
		NakBackoffMax:     pick(t.NakBackoffMax, d.NakBackoffMax),
		MaxNaks:           t.MaxNaks,
		RelayHold:         pick(t.RelayHold, d.RelayHold),
		RelayHoldMin:      pick(t.RelayHoldMin, d.RelayHoldMin),
		RelayHoldMax:      pick(t.RelayHoldMax, d.RelayHoldMax),
		CreditPoll:        pick(t.CreditPoll, d.CreditPoll),
		CreditKeepalive:   pick(t.CreditKeepalive, d.CreditKeepalive),
		StallTimeout:      pick(t.StallTimeout, d.StallTimeout),
		Activity:          pick(t.Activity, d.Activity),
		JoinSkew:          pick(t.JoinSkew, d.JoinSkew),
		ViewSettle:        pick(t.ViewSettle, d.ViewSettle),
	}
	if out.MaxNaks == 0 {
		out.MaxNaks = d.MaxNaks
	}
	for i := range out.Digests {
		out.Digests[i] = pick(t.Digests[i], d.Digests[i])
	}
	return out
}

// validate fills in defaults and rejects nonsense.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" || len(c.Name) > wire.MaxNameLen {
		bad("Name %q: want 1 to %d bytes", c.Name, wire.MaxNameLen)
	}
	if len(c.Zone) > wire.MaxNameLen || len(c.Region) > wire.MaxNameLen {
		bad("Zone and Region: at most %d bytes", wire.MaxNameLen)
	}
	if c.Fanout > FanoutRelay {
		bad("Fanout %d unknown", c.Fanout)
	}
	fill := func(name string, v *int, def, maxV int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 || *v > maxV:
			bad("%s %d out of range (1..%d)", name, *v, maxV)
		}
	}
	fill("RelayThreshold", &c.RelayThreshold, DefaultRelayThreshold, math.MaxInt32)
	fill("RepairBuffer", &c.RepairBuffer, DefaultRepairBuffer, 1<<24)
	fill("Window", &c.Window, DefaultWindow, maxSpan/2)
	fill("PendingLimit", &c.PendingLimit, DefaultPendingLimit, 1<<24)
	fill("InitialCredit", &c.InitialCredit, max(c.Window/16, 1), c.Window)
	if err := CheckTimeScale(c.TimeScale); err != nil {
		bad("%v", err)
	}
	if c.Timings.MaxNaks < 0 {
		bad("MaxNaks %d is negative", c.Timings.MaxNaks)
	}
	if len(errs) > 0 {
		return fmt.Errorf("protocol: invalid config: %w", errors.Join(errs...))
	}
	if c.Relayed == nil {
		c.Relayed = syncbus.NewDedupeWindow(0)
	}
	c.Timings = c.Timings.Scaled(c.TimeScale)
	return nil
}
