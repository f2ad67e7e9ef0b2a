package mesh_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/mesh"
)

// fakeClock is a Clock that moves only when told: timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	at     time.Time
	active bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) mesh.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		t.fireIfDue()
	}
}

// fireIfDue is called with the clock's lock held.
func (t *fakeTimer) fireIfDue() {
	if t.active && !t.at.After(t.c.now) {
		t.active = false
		select {
		case t.ch <- t.c.now:
		default:
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	t.fireIfDue()
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

// TestTheBusRunsOnItsClock: the protocol's decisions follow the clock the
// caller gives the bus. An awaited publish that nobody acknowledges ends
// at its AckTimeout on that clock: not while real time passes, at once
// when the clock is moved past it.
func TestTheBusRunsOnItsClock(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	buses := startCluster(t, secTwoNodes, func(i int, o *mesh.MeshOptions) {
		if i == 0 {
			o.Clock = clock
			o.AckTimeout = 50 * time.Millisecond
		}
	})
	a, b := buses[0], buses[1]
	b.SetMuted(true)
	res := make(chan error, 1)
	go func() { res <- a.PublishAndAwait(context.Background(), "on-the-clock", 1) }()
	warptest.Eventually(t, 5*time.Second, func() bool { return a.Health().PendingAwaits == 1 }, "the await to be pending")
	select {
	case err := <-res:
		t.Fatalf("the await ended on the real clock: %v", err)
	case <-time.After(300 * time.Millisecond): // six AckTimeouts of real time
	}
	clock.Advance(60 * time.Millisecond)
	select {
	case err := <-res:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the await ended with %v, want its deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("moving the clock past the deadline did not end the await")
	}
}
