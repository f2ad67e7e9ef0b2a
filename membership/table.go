package membership

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/syncbus"
)

// The member table is owned by one goroutine, the loop: it applies
// memberlist's notes, polls memberlist's states for suspicion, expires
// departed members, and publishes a new Snapshot after each change.
// Readers only ever load the published snapshot.

// pollInterval is how often the loop reads memberlist's states. Suspicion
// lasts several probe intervals, so half of one catches it.
func (m *Membership) pollInterval() time.Duration {
	return max(m.cfg.ProbeInterval/2, 10*time.Millisecond)
}

// run is the loop. It exits when done closes.
func (m *Membership) run() {
	defer m.wg.Done()
	tick := time.NewTicker(m.pollInterval())
	defer tick.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-m.notes.signal:
			m.applyNotes(time.Now())
		case now := <-tick.C:
			m.poll(now)
		}
	}
}

// applyNotes applies every queued note and publishes the result.
func (m *Membership) applyNotes(now time.Time) {
	changed := false
	for _, n := range m.notes.drain() {
		switch {
		case n.kind == noteLocal:
			changed = m.applyLocal(now) || changed
		case n.name == m.local.Name:
			// memberlist reports the local node too; we announce it
			// ourselves.
		case n.kind == noteLeave:
			changed = m.applyDown(n, now) || changed
		default:
			changed = m.applyAlive(n, now) || changed
		}
	}
	if changed {
		m.publish()
	}
}

func (m *Membership) applyLocal(now time.Time) bool {
	if !m.leftLocal.Load() || m.local.State == syncbus.MemberLeft {
		return false
	}
	m.local.State, m.local.Since = syncbus.MemberLeft, now
	return true
}

// applyAlive applies a join or an update: the node is alive with the
// metadata it carries.
func (m *Membership) applyAlive(n note, now time.Time) bool {
	old, known := m.members[n.name]
	meta, err := decodeMeta(n.meta)
	if err != nil {
		// A node we cannot understand is no part of the topology: the
		// data plane could not talk to it. memberlist still gossips with
		// it, which costs nothing and keeps failure detection whole.
		m.badMeta.Add(1)
		m.log.Log(slog.LevelWarn, "membership: leaving out a node whose metadata this node cannot use",
			"node", n.name, "addr", n.addr, "err", err)
		if known {
			delete(m.members, n.name)
			return true
		}
		return false
	}
	node := Node{
		Name:   n.name,
		Zone:   meta.Zone,
		Region: meta.Region,
		Addr:   n.addr,
		Boot:   meta.Boot,
		Proto:  meta.Proto,
		State:  syncbus.MemberAlive,
		Since:  now,
	}
	if meta.Started != 0 {
		node.Started = time.Unix(0, meta.Started)
	}
	if !known || !old.State.Alive() || old.Boot != meta.Boot {
		// New, back, or restarted: a new incarnation joins.
		m.members[n.name] = node
		m.emit(EventJoin, node)
		return true
	}
	// The same incarnation: keep its health, which the poll follows.
	node.State, node.Since = old.State, old.Since
	if node == old {
		return false
	}
	m.members[n.name] = node
	m.emit(EventUpdate, node)
	return true
}

// applyDown applies a departure, telling a graceful leave from a failure
// by memberlist's own state of the node.
func (m *Membership) applyDown(n note, now time.Time) bool {
	node, known := m.members[n.name]
	if !known || !node.State.Alive() {
		return false
	}
	node.State, node.Since = syncbus.MemberFailed, now
	kind := EventFailed
	if m.state != nil {
		if st, ok := m.state.get(n.name); ok && st == memberlist.StateLeft {
			node.State, kind = syncbus.MemberLeft, EventLeave
		}
	}
	m.members[n.name] = node
	if node.State == syncbus.MemberFailed {
		m.rememberFailed(node, now)
	}
	m.emit(kind, node)
	return true
}

// poll follows suspicion, which memberlist does not report, and expires
// departed members.
func (m *Membership) poll(now time.Time) {
	defer m.polls.Add(1)
	changed, anySuspect := false, false
	for name, node := range m.members {
		if !node.State.Alive() && now.Sub(node.Since) > m.cfg.KeepDown {
			delete(m.members, name)
			changed = true
		}
		anySuspect = anySuspect || node.State == syncbus.MemberSuspect
	}
	if m.state != nil {
		m.state.all(func(name string, st memberlist.NodeStateType) {
			if st != memberlist.StateSuspect && !anySuspect {
				return // the usual case: no suspicion begins or ends
			}
			node, known := m.members[name]
			if !known {
				return
			}
			switch {
			case st == memberlist.StateSuspect && node.State == syncbus.MemberAlive:
				node.State, node.Since = syncbus.MemberSuspect, now
				m.members[name] = node
				m.emit(EventSuspect, node)
				changed = true
			case st == memberlist.StateAlive && node.State == syncbus.MemberSuspect:
				node.State, node.Since = syncbus.MemberAlive, now
				m.members[name] = node
				m.emit(EventAlive, node)
				changed = true
			}
		})
	}
	m.expireFailed(now)
	if changed {
		m.publish()
	}
}

// emit queues an event for the reader until the snapshot that shows its
// change is published (every change that emits is published).
func (m *Membership) emit(kind EventKind, node Node) {
	m.unsent = append(m.unsent, Event{Kind: kind, Node: node})
}

// publish builds and stores a new snapshot, then hands the reader the
// events of the changes it shows: a reader that reads Snapshot on an
// event finds that event's change in it. Events the reader has no room
// for are dropped and counted: the loop must never wait for a slow
// reader.
func (m *Membership) publish() {
	defer m.sendEvents()
	nodes := make([]Node, 0, len(m.members)+1)
	nodes = append(nodes, m.local)
	for _, n := range m.members {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	m.version++
	m.snap.Store(&Snapshot{Version: m.version, Local: m.local, Nodes: nodes})
	select {
	case m.changed <- struct{}{}:
	default: // a signal is pending already
	}
}

func (m *Membership) sendEvents() {
	for _, ev := range m.unsent {
		select {
		case m.events <- ev:
		default:
			m.eventsDropped.Add(1)
		}
	}
	clear(m.unsent)
	m.unsent = m.unsent[:0]
}

// rememberFailed keeps a failed member's address for rejoining.
func (m *Membership) rememberFailed(n Node, now time.Time) {
	if !n.Addr.IsValid() {
		return
	}
	m.failedMu.Lock()
	defer m.failedMu.Unlock()
	m.failed = slices.DeleteFunc(m.failed, func(d downAddr) bool { return d.name == n.Name })
	if len(m.failed) >= maxRejoinMemory {
		m.failed = slices.Delete(m.failed, 0, 1) // the oldest
	}
	m.failed = append(m.failed, downAddr{name: n.Name, addr: n.Addr, at: now})
}

// expireFailed forgets failed members older than RejoinTimeout.
func (m *Membership) expireFailed(now time.Time) {
	m.failedMu.Lock()
	defer m.failedMu.Unlock()
	m.failed = slices.DeleteFunc(m.failed, func(d downAddr) bool {
		return now.Sub(d.at) > m.cfg.RejoinTimeout
	})
}

// failedMembers returns the remembered failed members, newest first.
func (m *Membership) failedMembers() []downAddr {
	m.failedMu.Lock()
	defer m.failedMu.Unlock()
	out := slices.Clone(m.failed)
	slices.Reverse(out)
	return out
}
