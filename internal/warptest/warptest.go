// Package warptest is the test kit every package's tests share: one
// wait-until helper (Eventually, WaitFor), one event collector
// (Collector), a bounded receive (Next), the goroutine leak check
// (LeakCheck), and RaceEnabled for the tests that run a lighter twin under
// the race detector. Its sibling package nettest holds the hookable
// transport that injects faults.
//
// Like every package ending in "test", it is for tests only: production
// code never imports it. It imports syncbus (and goleak) only, so that
// the tests of every package, membership's own included, can use it.
package warptest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// pollEvery is how often WaitFor looks at its condition.
const pollEvery = 2 * time.Millisecond

// WaitFor polls cond until it holds or timeout passes, and reports
// whether it held. Running out of time is not a failure here: a test uses
// it to bound a wait whose outcome it judges itself.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery) // the polling interval, not synchronisation
	}
	return true
}

// Eventually waits until cond holds, failing the test when timeout passes
// first, with the message format and args. An arg that is a func() string
// is called only then, so a message can describe the state at the
// failure rather than at the call.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if WaitFor(timeout, cond) {
		return
	}
	for i, a := range args {
		if f, ok := a.(func() string); ok {
			args[i] = f()
		}
	}
	t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
}

// Received is one event a Collector received, and when.
type Received struct {
	Event syncbus.Event
	At    time.Time
}

// Collector records every event a subscription channel delivers, with its
// arrival time, until the channel closes. It is safe for concurrent use.
type Collector struct {
	mu      sync.Mutex
	events  []Received
	first   map[string]time.Time // key -> first arrival
	count   map[string]int
	resyncs int
	dups    int
	done    chan struct{}
}

// Collect starts reading ch in a goroutine that ends when ch is closed
// (the subscription ends, or its bus closes).
func Collect(ch <-chan syncbus.Event) *Collector {
	c := &Collector{first: map[string]time.Time{}, count: map[string]int{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ev := range ch {
			now := time.Now()
			c.mu.Lock()
			c.events = append(c.events, Received{ev, now})
			if ev.Op == syncbus.OpResync {
				c.resyncs++
			} else {
				if c.count[ev.Key] > 0 {
					c.dups++
				} else {
					c.first[ev.Key] = now
				}
				c.count[ev.Key]++
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// Done is closed once the channel was closed and everything read.
func (c *Collector) Done() <-chan struct{} { return c.done }

// Count returns how many times key was delivered.
func (c *Collector) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[key]
}

// Distinct returns how many distinct keys were delivered.
func (c *Collector) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.count)
}

// Resyncs returns how many resyncs arrived.
func (c *Collector) Resyncs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resyncs
}

// Dups returns how many deliveries repeated a key delivered before.
func (c *Collector) Dups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

// Len returns how many events, resyncs included, arrived.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// At returns when key first arrived.
func (c *Collector) At(key string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.first[key]
	return t, ok
}

// Events returns a copy of everything received, in order.
func (c *Collector) Events() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.events...)
}

// WaitKey waits until key has been delivered, failing the test after
// timeout.
func (c *Collector) WaitKey(t testing.TB, key string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() bool { return c.Count(key) > 0 }, "no delivery of %s (%s)", key,
		func() string { return fmt.Sprintf("%d events, %d resyncs so far", c.Len(), c.Resyncs()) })
}

// Counter counts deliveries without keeping them, for throughput runs
// where a Collector's bookkeeping would weigh on what is measured. It
// tells when the count reaches a target, and when it last moved. It is
// safe for concurrent use.
type Counter struct {
	mu      sync.Mutex
	n       uint64
	target  uint64
	reached chan struct{} // closed when n >= target; nil when nobody waits
	last    time.Time
}

// Add counts k more deliveries.
func (c *Counter) Add(k uint64) {
	now := time.Now()
	c.mu.Lock()
	c.n += k
	c.last = now
	if c.reached != nil && c.n >= c.target {
		close(c.reached)
		c.reached = nil
	}
	c.mu.Unlock()
}

// Count returns the deliveries counted so far.
func (c *Counter) Count() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Expect returns a channel closed once the count reaches total.
func (c *Counter) Expect(total uint64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.n >= total {
		close(ch)
		return ch
	}
	c.target, c.reached = total, ch
	return ch
}

// LastAt returns when deliveries were last counted.
func (c *Counter) LastAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
