package membership

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	// maxPendingContacts bounds the addresses waiting for a state
	// exchange; more are dropped (and asked for again by the mesh later).
	maxPendingContacts = 64
	// contactEvery and contactBurst pace the exchanges: each costs a TCP
	// connection and a full state transfer both ways.
	contactEvery = 100 * time.Millisecond
	contactBurst = 4
)

// Contact asks for a full state exchange (memberlist's push/pull) with the
// node at addr, soon and in the background. The mesh calls it when a node
// it does not list sends it frames: gossip missed that node, and waiting
// for the next periodic exchange (tens of seconds at scale) would leave
// this node publishing past it. Addresses that are members by then are
// skipped; requests beyond a small queue are dropped. Contact never
// blocks.
func (m *Membership) Contact(addr netip.AddrPort) {
	if !addr.IsValid() || addr == m.self || m.closed.Load() {
		return
	}
	m.contacts.add(addr)
}

// contactQueue holds the addresses Contact was asked for, in order, once
// each.
type contactQueue struct {
	mu      sync.Mutex
	pending []netip.AddrPort
	wake    chan struct{} // one slot
	lim     *rate.Limiter

	dropped   atomic.Uint64
	contacted atomic.Uint64
}

func newContactQueue() *contactQueue {
	return &contactQueue{wake: make(chan struct{}, 1), lim: rate.NewLimiter(rate.Every(contactEvery), contactBurst)}
}

func (q *contactQueue) add(addr netip.AddrPort) {
	q.mu.Lock()
	switch {
	case slices.Contains(q.pending, addr):
	case len(q.pending) >= maxPendingContacts:
		q.dropped.Add(1)
	default:
		q.pending = append(q.pending, addr)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *contactQueue) take() (netip.AddrPort, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return netip.AddrPort{}, false
	}
	a := q.pending[0]
	q.pending = slices.Delete(q.pending, 0, 1)
	return a, true
}

// contactLoop carries out the exchanges Contact asked for, paced, until
// Close.
func (m *Membership) contactLoop() {
	defer m.wg.Done()
	q := m.contacts
	for {
		select {
		case <-m.done:
			return
		case <-q.wake:
		}
		for {
			addr, ok := q.take()
			if !ok {
				break
			}
			if m.isAliveMember(addr) {
				continue // gossip got there first
			}
			if q.lim.Wait(m.ctx) != nil {
				return // closing
			}
			if m.joinOne(addr) {
				q.contacted.Add(1)
				m.log.Log(slog.LevelInfo, "membership: exchanged state with a node gossip had missed", "addr", addr)
			}
		}
	}
}

// isAliveMember reports whether an alive member has the address addr.
func (m *Membership) isAliveMember(addr netip.AddrPort) bool {
	for _, n := range m.Snapshot().Nodes {
		if n.Addr == addr && n.State.Alive() {
			return true
		}
	}
	return false
}
