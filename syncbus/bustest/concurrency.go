package bustest

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/warpmesh/warp/syncbus"
)

// testConcurrency: publishers on every node, subscribers that come and go
// on every node, and steady readers run at once (run it under -race). The
// steady readers must see every event exactly once, or a resync that
// reports a loss.
func (s *suite) testConcurrency(t *testing.T) {
	c := s.build(t, threeNodes())
	const perPublisher = 30
	publishers := len(c.buses)
	ctx, cancel := context.WithTimeout(context.Background(), s.f.Timeout)
	defer cancel()

	results := make([]steadyResult, len(c.buses))
	var readers sync.WaitGroup
	if s.f.Prefix {
		for i := range c.buses {
			ch, err := c.prefixer(i).SubscribePrefix(ctx, "c/")
			checkNoErr(t, err, c.name(i)+": SubscribePrefix")
			// The final events travel apart from the others, so an
			// overflow of the busy subscription cannot drop them.
			done, err := c.prefixer(i).SubscribePrefix(ctx, "cdone/")
			checkNoErr(t, err, c.name(i)+": SubscribePrefix")
			readers.Add(1)
			go func() {
				defer readers.Done()
				results[i] = readSteady(ctx, ch, done, publishers, publishers*perPublisher)
			}()
		}
	}

	stop := make(chan struct{})
	var churners sync.WaitGroup
	for i := range c.buses {
		churners.Add(1)
		go func() {
			defer churners.Done()
			c.churn(t, i, stop)
		}()
	}

	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			b := c.buses[p]
			for j := range perPublisher {
				if err := b.Publish(ctx, fmt.Sprintf("c/%d", j%4), tag(uint64(p*1000+j))); err != nil {
					t.Errorf("%s: Publish: %v", c.name(p), err)
					return
				}
				if j%10 == 0 {
					if err := b.RevokeLease(ctx, "c/l"); err != nil {
						t.Errorf("%s: RevokeLease: %v", c.name(p), err)
						return
					}
				}
			}
			if err := b.Publish(ctx, fmt.Sprintf("cdone/%d", p)); err != nil {
				t.Errorf("%s: final Publish: %v", c.name(p), err)
			}
		}()
	}
	pubs.Wait()
	readers.Wait()
	close(stop)
	churners.Wait()

	for i, r := range results {
		if !s.f.Prefix {
			break
		}
		if r.timeout {
			t.Errorf("%s: steady reader saw %d events, %d of %d final events (resync %v) within %v",
				c.name(i), r.events, r.done, publishers, r.resync, s.f.Timeout)
			continue
		}
		for id, n := range r.ids {
			if n > 1 {
				t.Errorf("%s: event %v delivered %d times", c.name(i), id, n)
			}
		}
		if !r.resync && r.events != publishers*perPublisher {
			t.Errorf("%s: steady reader saw %d events and no resync, want %d", c.name(i), r.events, publishers*perPublisher)
		}
	}
}

// steadyResult is what a steady reader saw.
type steadyResult struct {
	events  int
	resync  bool
	ids     map[syncbus.EventID]int
	done    int
	timeout bool
}

// readSteady reads events until it has seen the final event of every
// publisher and either every event or a resync standing for the missing
// ones (events of one publisher may arrive after its final one).
func readSteady(ctx context.Context, ch, done <-chan syncbus.Event, publishers, want int) steadyResult {
	r := steadyResult{ids: map[syncbus.EventID]int{}}
	for r.done < publishers || (r.events < want && !r.resync) {
		select {
		case ev, ok := <-ch:
			if !ok {
				r.timeout = true
				return r
			}
			if ev.Op == syncbus.OpResync {
				r.resync = true
				continue
			}
			r.events++
			r.ids[ev.ID]++
		case _, ok := <-done:
			if !ok {
				r.timeout = true
				return r
			}
			r.done++
		case <-ctx.Done():
			r.timeout = true
			return r
		}
	}
	return r
}

// churn subscribes and unsubscribes on node i in every way the API allows
// until stop is closed, reading what arrives in between.
func (c *cluster) churn(t *testing.T, i int, stop <-chan struct{}) {
	b := c.buses[i]
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.f.Timeout)
		var err error
		switch n % 4 {
		case 0: // subscribe, read if anything came, unsubscribe twice
			var ch <-chan syncbus.Event
			if ch, err = b.Subscribe(ctx, "c/0"); err == nil {
				drain(ch)
				err = b.Unsubscribe(ctx, "c/0", ch)
				if err == nil {
					err = b.Unsubscribe(ctx, "c/0", ch)
				}
			}
		case 1: // a lease subscription ended by its ctx
			_, err = b.SubscribeLease(ctx, "c/l")
		case 2: // a prefix subscription, or a key one, ended by Unsubscribe
			if p, ok := b.(syncbus.PrefixSubscriber); ok && c.f.Prefix {
				var ch <-chan syncbus.Event
				if ch, err = p.SubscribePrefix(ctx, "c/"); err == nil {
					drain(ch)
					err = p.UnsubscribePrefix(ctx, "c/", ch)
				}
			}
		case 3: // ctx cancellation racing Unsubscribe
			var ch <-chan syncbus.Event
			if ch, err = b.Subscribe(ctx, "c/1"); err == nil {
				go cancel()
				err = b.Unsubscribe(context.Background(), "c/1", ch)
			}
		}
		cancel()
		if err != nil {
			t.Errorf("%s: churn step %d: %v", c.name(i), n%4, err)
			return
		}
		if n%16 == 15 {
			runtime.Gosched() // let the publishers in on a machine with few cores
		}
	}
}
