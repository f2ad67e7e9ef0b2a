package bridge

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Presence: every node announces itself (name, zone, region, incarnation,
// interval) on the bus's channel every PresenceInterval, and once more
// when it closes (Leaving). A node heard from is alive; one silent for two
// of its intervals is suspect (still alive for acknowledgements, as with
// the mesh), for three failed. A node that announces a new incarnation
// replaces the old one. Hearing of a node for the first time makes a node
// announce itself at once, so a newcomer learns the others within one
// broker round trip rather than one interval.

const (
	suspectAfter = 2 // intervals of silence
	failedAfter  = 3
	// forgetAfter is how many intervals a left or failed node stays listed.
	forgetAfter = 60
)

type peer struct {
	m        syncbus.Member
	boot     uint64
	lastSeen time.Time
	// heldAtSeen is Core.heldBy at lastSeen: the sweep does not count as
	// silence the time this node held its deliveries since then.
	heldAtSeen time.Duration
	interval   time.Duration
}

// peerTable is the node's view of the others.
type peerTable struct {
	mu      sync.Mutex
	peers   map[string]*peer
	members []syncbus.Member // snapshot, the local node included; replaced, never modified
	changed chan struct{}    // closed and replaced on every change
	soon    chan struct{}    // asks the presence loop to announce now
}

func (t *peerTable) init() {
	t.peers = make(map[string]*peer)
	t.changed = make(chan struct{})
	t.soon = make(chan struct{}, 1)
}

func (t *peerTable) announceSoon() {
	select {
	case t.soon <- struct{}{}:
	default:
	}
}

// snapshot returns the members, the local node included; the slice is
// shared and read-only.
func (t *peerTable) snapshot(c *Core) []syncbus.Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.members == nil {
		t.rebuildLocked(c)
	}
	return t.members
}

// rebuildLocked recomputes the snapshot and wakes the waiters.
func (t *peerTable) rebuildLocked(c *Core) {
	ms := make([]syncbus.Member, 0, len(t.peers)+1)
	ms = append(ms, syncbus.Member{Name: c.name, Zone: c.zone, Region: c.region, State: syncbus.MemberAlive})
	for _, p := range t.peers {
		ms = append(ms, p.m)
	}
	slices.SortFunc(ms, func(a, b syncbus.Member) int { return cmp.Compare(a.Name, b.Name) })
	t.members = ms
	close(t.changed)
	t.changed = make(chan struct{})
}

// onPresence records an announcement.
func (c *Core) onPresence(p *wire.Presence) {
	if p.Node == c.name {
		if p.Boot != c.boot {
			c.refuse("own-name", fmt.Errorf("bridge: presence of another node named %q: node names must be unique", p.Node))
		}
		return
	}
	now := time.Now()
	t := &c.peers
	t.mu.Lock()
	old, known := t.peers[p.Node]
	state := syncbus.MemberAlive
	if p.Leaving {
		state = syncbus.MemberLeft
	}
	if known && old.boot != p.Boot && p.Leaving {
		// The departure of an incarnation already replaced: not news.
		t.mu.Unlock()
		return
	}
	fresh := !known || old.boot != p.Boot || !old.m.State.Alive()
	np := &peer{
		m:          syncbus.Member{Name: p.Node, Zone: p.Zone, Region: p.Region, State: state},
		boot:       p.Boot,
		lastSeen:   now,
		heldAtSeen: c.heldBy(now),
		interval:   p.Interval,
	}
	changed := !known || old.m != np.m
	t.peers[p.Node] = np
	var members []syncbus.Member
	if changed {
		t.rebuildLocked(c)
		members = t.members
	}
	t.mu.Unlock()
	if changed {
		c.awaits.update(members)
	}
	if fresh && !p.Leaving {
		t.announceSoon()
	}
}

// sweep marks silent nodes suspect or failed and forgets old departures.
// Silence does not count the time this node held its deliveries (see
// holdDelivery).
func (c *Core) sweep(now time.Time) {
	t := &c.peers
	held := c.heldBy(now)
	t.mu.Lock()
	changed := false
	for name, p := range t.peers {
		iv := p.interval
		if iv <= 0 {
			iv = c.cfg.PresenceInterval
		}
		// Time this node held its own deliveries is not the peer's
		// silence: its announcements were waiting behind them.
		silent := now.Sub(p.lastSeen) - (held - p.heldAtSeen)
		state := p.m.State
		switch {
		case !state.Alive():
			if silent > forgetAfter*iv {
				delete(t.peers, name)
				changed = true
			}
			continue
		case silent > failedAfter*iv:
			state = syncbus.MemberFailed
		case silent > suspectAfter*iv:
			state = syncbus.MemberSuspect
		default:
			state = syncbus.MemberAlive
		}
		if state != p.m.State {
			p.m.State = state
			changed = true
		}
	}
	var members []syncbus.Member
	if changed {
		t.rebuildLocked(c)
		members = t.members
	}
	t.mu.Unlock()
	if changed {
		c.awaits.update(members)
	}
}

// presenceLoop announces the node, sweeps the peer table and forgets idle
// numbering windows until Close, then announces the departure.
func (c *Core) presenceLoop() {
	iv := c.cfg.PresenceInterval
	tick := time.NewTicker(max(iv/4, time.Millisecond))
	defer tick.Stop()
	var buf []byte
	var lastAnnounce time.Time
	announce := func(leaving bool, timeout time.Duration) {
		p := wire.Presence{Node: c.name, Zone: c.zone, Region: c.region, Boot: c.boot, Interval: iv, Leaving: leaving}
		body, err := wire.AppendPresence(nil, &p, false)
		if err != nil {
			c.log.Error("bridge: encoding presence", "err", err)
			return
		}
		frame, err := c.ctlSealer.Seal(buf[:0], body)
		if err != nil {
			c.log.Error("bridge: sealing presence", "err", err)
			return
		}
		buf = frame
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = c.tr.Publish(ctx, [][]byte{frame})
		cancel()
		lastAnnounce = time.Now()
		if err != nil {
			c.c.sendErrors.Add(1)
			c.refuseSend(err, 0)
			return
		}
		c.c.sent.add(len(frame))
	}
	announce(false, c.cfg.SendTimeout)
	for {
		select {
		case <-c.done:
			if c.failed.Load() == nil {
				announce(true, c.closeTimeout())
			}
			return
		case <-c.peers.soon:
			// Many newcomers at once ask many times: once per tenth of an
			// interval is enough.
			if time.Since(lastAnnounce) >= iv/10 {
				announce(false, c.cfg.SendTimeout)
			} else {
				c.peers.announceSoon()
				select {
				case <-c.done:
				case <-time.After(iv / 10):
				}
			}
		case now := <-tick.C:
			if now.Sub(lastAnnounce) >= iv {
				announce(false, c.cfg.SendTimeout)
				c.out.sendDigest()
			}
			c.sweep(now)
			c.recv.gc(now.Add(-forgetAfter * iv))
		}
	}
}

// Members returns every node this one knows of, itself included, sorted by
// name: alive (heard from recently), suspect, failed (silent) or left
// (announced its departure). It returns nil once the bus is closed.
func (c *Core) Members() []syncbus.Member {
	if c.err != nil || c.closed.Load() {
		return nil
	}
	return slices.Clone(c.peers.snapshot(c))
}

// WaitForMembers waits until n nodes, this one included, are alive, or ctx
// ends (returning its error).
func (c *Core) WaitForMembers(ctx context.Context, n int) error {
	for {
		if err := c.check(); err != nil {
			return err
		}
		c.peers.mu.Lock()
		if c.peers.members == nil {
			c.peers.rebuildLocked(c)
		}
		alive := 0
		for _, m := range c.peers.members {
			if m.State.Alive() {
				alive++
			}
		}
		changed := c.peers.changed
		c.peers.mu.Unlock()
		if alive >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return syncbus.ErrClosed
		case <-c.down:
		}
	}
}
