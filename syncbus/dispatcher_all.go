package syncbus

import "context"

// kindAll asks subscribe for an all-events subscription. It is never stored:
// such a subscription is a prefix subscription of "" with its all flag set,
// so that delivery, overflow and Resync treat it exactly like one, and
// Deliver also hands it lease revocations.
const kindAll = kindLease + 1

// SubscribeAll returns a channel that receives every event the node
// delivers: the invalidations of every key and the lease revocations,
// whether published on this bus or relayed into it. It is what a gateway
// reads. Like a prefix subscription it holds PrefixBuffer events, then one
// resync (Key "") standing for everything it could not hold; the channel is
// closed, exactly once, by UnsubscribeAll, by the cancellation of ctx or by
// Close. (UnsubscribePrefix with the empty prefix ends it too: it is a
// prefix subscription of "" that also sees lease revocations.)
func (d *Dispatcher) SubscribeAll(ctx context.Context) (<-chan Event, error) {
	return d.subscribe(ctx, kindAll, "")
}

// UnsubscribeAll ends the all-events subscription ch and closes it. It
// returns nil, doing nothing, when ch is not (or no longer) one.
func (d *Dispatcher) UnsubscribeAll(ch <-chan Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if ch == nil {
		return nil
	}
	if s, ok := d.byChan[ch]; ok && s.all {
		d.removeLocked(s)
	}
	return nil
}

// withoutSub returns subs without s, in a new slice: a Deliver holding the
// read lock may still range over the old one.
func withoutSub(subs []*subscription, s *subscription) []*subscription {
	if len(subs) == 1 && subs[0] == s {
		return nil
	}
	next := make([]*subscription, 0, len(subs))
	for _, o := range subs {
		if o != s {
			next = append(next, o)
		}
	}
	return next
}
