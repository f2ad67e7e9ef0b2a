package mesh

import (
	"slices"
	"sync"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// await is one PublishAndAwait or PublishAndAwaitTopology in flight.
// Its fields after done are guarded by awaitTable.mu.
type await struct {
	seq  uint64
	ev   wire.Event
	done chan struct{} // closed once the tracker is Satisfied or Impossible

	tracker  *zones.Tracker
	finished bool
	// relays maps each remote zone to the relay last sent the event, and
	// avoid holds the relays that stayed silent (they are not asked again).
	relays map[string]string
	avoid  map[string]bool
	// Retransmission schedule.
	attempts int
	nextTry  time.Time
}

func newAwait(ev *wire.Event, tr *zones.Tracker, start time.Time) *await {
	return &await{
		seq:     ev.Seq,
		ev:      *ev,
		done:    make(chan struct{}),
		tracker: tr,
		nextTry: start.Add(retransmitAfter(0)),
	}
}

// retransmitAfter is the wait before retransmission number attempt+1: 20ms,
// then doubling, at most 500ms. A lossless LAN acknowledges within a
// millisecond, so the first retransmission only happens on loss.
func retransmitAfter(attempt int) time.Duration {
	d := 20 * time.Millisecond << min(attempt, 5)
	return min(d, 500*time.Millisecond)
}

// awaitTable holds the awaits in flight by sequence number. Publishers add
// and remove; the event loop records acks, retransmits and applies
// membership changes. A mutex serialises them: contention is one lock per
// ack, and a tracker is cheap.
type awaitTable struct {
	mu sync.Mutex
	m  map[uint64]*await
}

func (t *awaitTable) init() { t.m = make(map[uint64]*await) }

func (t *awaitTable) add(a *await) {
	t.mu.Lock()
	t.m[a.seq] = a
	t.mu.Unlock()
}

func (t *awaitTable) remove(seq uint64) {
	t.mu.Lock()
	delete(t.m, seq)
	t.mu.Unlock()
}

func (t *awaitTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// ack records that node applied event seq; it reports whether the ack
// counted.
func (t *awaitTable) ack(seq uint64, node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.m[seq]
	if !ok || a.finished {
		return false
	}
	counted := a.tracker.Ack(node)
	if counted && a.tracker.Result() != zones.Pending {
		a.finish()
	}
	return counted
}

// decideNow finishes a when its tracker needs no ack at all.
func (t *awaitTable) decideNow(a *await) {
	t.mu.Lock()
	if a.tracker.Result() != zones.Pending {
		a.finish()
	}
	t.mu.Unlock()
}

// finish marks a decided; called with the lock held.
func (a *await) finish() {
	if !a.finished {
		a.finished = true
		close(a.done)
	}
}

// setTopology applies a membership change to every await: a request the
// alive nodes can no longer satisfy ends at once.
func (t *awaitTable) setTopology(topo *zones.Topology) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.m {
		if a.finished {
			continue
		}
		if err := a.tracker.SetTopology(topo); err != nil {
			continue // another local node: cannot happen with one membership
		}
		if a.tracker.Result() != zones.Pending {
			a.finish()
		}
	}
}

// finish decides the outcome of a after waiting stopped for cause (nil when
// the tracker decided). It returns nil when satisfied, filling report.
func (t *awaitTable) finish(a *await, cause error, report *syncbus.AckReport) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a.finish()
	if a.tracker.Result() == zones.Satisfied {
		if report != nil {
			*report = a.tracker.Report()
		}
		return nil
	}
	return a.tracker.Err(cause)
}

// retransmission is what the event loop resends for one await.
type retransmission struct {
	ev     wire.Event
	direct []string          // nodes to send the event to directly
	relays map[string]string // zone -> new relay, for zones whose relay is silent
}

// due collects the retransmissions due at now, and schedules the next ones.
func (t *awaitTable) due(now time.Time, v *view, dst []retransmission) []retransmission {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.m {
		if a.finished || now.Before(a.nextTry) {
			continue
		}
		a.nextTry = now.Add(retransmitAfter(a.attempts + 1))
		a.attempts++
		r := retransmission{ev: a.ev}
		unacked := a.tracker.Unacked()
		if v.mode == zones.ModeRelay {
			r.direct, r.relays = a.replanRelays(v, unacked)
		} else {
			r.direct = unacked
		}
		if len(r.direct) > 0 || len(r.relays) > 0 {
			dst = append(dst, r)
		}
	}
	return dst
}

// replanRelays splits the unacked nodes of a relayed await: nodes of the
// local zone are resent directly; a remote zone whose relay has not acked
// gets another relay (the silent one is avoided from now on); in a remote
// zone whose relay acked, the nodes still missing are resent directly.
func (a *await) replanRelays(v *view, unacked []string) (direct []string, relays map[string]string) {
	local := v.topo.LocalZone()
	unackedSet := make(map[string]bool, len(unacked))
	for _, n := range unacked {
		unackedSet[n] = true
	}
	silentZones := map[string]bool{}
	for zone, relay := range a.relays {
		if unackedSet[relay] {
			silentZones[zone] = true
			if a.avoid == nil {
				a.avoid = map[string]bool{}
			}
			a.avoid[relay] = true
		}
	}
	for _, n := range unacked {
		zone, _ := v.topo.ZoneOf(n)
		switch {
		case zone == local:
			direct = append(direct, n)
		case silentZones[zone]:
			// The new relay covers the zone.
		case a.relays[zone] == "":
			// No relay was ever picked for this zone (it joined later).
			silentZones[zone] = true
		default:
			direct = append(direct, n)
		}
	}
	avoid := func(name string) bool { return a.avoid[name] }
	for zone := range silentZones {
		tgt, ok := v.topo.PickRelay(zone, zones.Spread(a.ev.ID)+uint64(a.attempts), avoid)
		if !ok {
			continue
		}
		if relays == nil {
			relays = map[string]string{}
		}
		relays[zone] = tgt.Node
		a.relays[zone] = tgt.Node
	}
	slices.Sort(direct)
	return direct, relays
}
