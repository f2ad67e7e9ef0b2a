package membership

import (
	"bytes"
	"net/netip"
	"sync"

	"github.com/hashicorp/memberlist"
)

// noteKind is what memberlist reported about a node.
type noteKind uint8

const (
	noteJoin noteKind = iota + 1
	noteUpdate
	noteLeave
	noteLocal // the local node changed (it left); carries nothing
)

// note is one report of memberlist's, copied out of its structures.
type note struct {
	kind noteKind
	name string
	addr netip.AddrPort
	meta []byte
}

// noteQueue carries memberlist's reports from its goroutines to the
// membership loop. memberlist calls its delegates with its node table
// locked, from its packet handler, so they must never block: push appends
// under a short lock and signals without waiting. The queue does not drop:
// memberlist produces notes no faster than it processes gossip, and the
// loop drains the whole queue each time it wakes.
type noteQueue struct {
	mu     sync.Mutex
	notes  []note
	spare  []note
	signal chan struct{} // capacity 1: "there is something to drain"
}

func newNoteQueue() *noteQueue {
	return &noteQueue{signal: make(chan struct{}, 1)}
}

func (q *noteQueue) push(n note) {
	q.mu.Lock()
	q.notes = append(q.notes, n)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// drain returns the queued notes. The slice is valid until the next call.
func (q *noteQueue) drain() []note {
	q.mu.Lock()
	out := q.notes
	q.notes = q.spare[:0]
	q.mu.Unlock()
	q.spare = out
	return out
}

// delegate is memberlist's Delegate and EventDelegate for one Membership.
type delegate struct {
	meta  []byte // fixed for the node's lifetime, at most MetaMaxSize
	notes *noteQueue
}

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

// NodeMeta implements memberlist.Delegate. New checked the size.
func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

// NotifyMsg implements memberlist.Delegate; the data plane does not ride
// on gossip, so there are no user messages.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.notes.push(noteOf(noteJoin, n)) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.notes.push(noteOf(noteUpdate, n)) }

// NotifyLeave implements memberlist.EventDelegate. Whether the node left or
// failed is read later, by the loop, once memberlist has released its lock.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.notes.push(noteOf(noteLeave, n)) }

// noteOf copies what a note needs out of memberlist's node, which memberlist
// goes on changing after the call.
func noteOf(kind noteKind, n *memberlist.Node) note {
	nt := note{kind: kind, name: n.Name}
	if ip, ok := netip.AddrFromSlice(n.Addr); ok {
		nt.addr = netip.AddrPortFrom(ip.Unmap(), n.Port)
	}
	if kind != noteLeave {
		nt.meta = bytes.Clone(n.Meta)
	}
	return nt
}
