package bridgetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// loadKeys is how many keys the load cycles through; each has an exact-key
// subscription on every receiving node, beside one prefix subscription.
const loadKeys = 4

// settle bounds the wait, once the load stops, for each subscription to
// receive the last event it covers.
const settle = 10 * time.Second

// LoadBus is what Load needs of a bus.
type LoadBus interface {
	syncbus.Bus
	syncbus.PrefixSubscriber
	Name() string
	Close() error
}

// Load publishes load/0, load/1, … at a steady rate from one bus and
// records every subscription of the others: one to the prefix load/ and
// one to each of its keys. Event i carries i in its vector clock, so a
// subscription's deliveries name exactly which events they are.
//
// Its methods are called from the test's goroutine.
type Load struct {
	pub   LoadBus
	buses []LoadBus // pub first, then the receivers
	subs  []*loadSub

	mu      sync.Mutex
	started []time.Time // when the publish of event i began; zero if it returned an error
	errs    int

	running  bool // set by Start; read by halt, on the test's goroutine
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// loadSub is one subscription of a receiving node: the prefix "load/" or
// one exact key.
type loadSub struct {
	node, target string
	exact        bool
	key          int // the key index of an exact-key subscription
	c            *warptest.Collector
}

func (s *loadSub) String() string {
	if s.exact {
		return fmt.Sprintf("%s key %s", s.node, s.target)
	}
	return fmt.Sprintf("%s prefix %s", s.node, s.target)
}

func loadKey(i int) string { return fmt.Sprintf("load/%d", i%loadKeys) }

// NewLoad subscribes every bus of receivers to the prefix load/ and to
// each load key; pub will publish, once Start is called.
//
// It registers two cleanups with t: the later one, which runs first,
// closes pub and the receivers and waits until every subscription's
// channel is closed, so that a leak check registered before sees no
// goroutine of theirs; the earlier one stops the publisher. The buses
// must allow Close to be called again (every Bus here does).
func NewLoad(t *testing.T, pub LoadBus, receivers ...LoadBus) *Load {
	t.Helper()
	l := &Load{pub: pub, buses: append([]LoadBus{pub}, receivers...), stop: make(chan struct{}), done: make(chan struct{})}
	// A test that fails half-way still stops the publisher before the
	// buses' own cleanups close them (cleanups run last-registered first).
	t.Cleanup(l.halt)
	ctx := context.Background()
	for _, b := range receivers {
		ch, err := b.SubscribePrefix(ctx, "load/")
		if err != nil {
			t.Fatal(err)
		}
		l.subs = append(l.subs, &loadSub{node: b.Name(), target: "load/", c: warptest.Collect(ch)})
		for k := range loadKeys {
			ch, err := b.Subscribe(ctx, loadKey(k))
			if err != nil {
				t.Fatal(err)
			}
			l.subs = append(l.subs, &loadSub{node: b.Name(), target: loadKey(k), exact: true, key: k, c: warptest.Collect(ch)})
		}
	}
	t.Cleanup(func() {
		for _, b := range l.buses {
			_ = b.Close()
		}
		for _, s := range l.subs {
			<-s.c.Done()
		}
	})
	return l
}

// Start publishes one event every interval, each with a timeout of one
// second, until Finish (or the end of the test).
func (l *Load) Start(interval time.Duration) {
	l.running = true
	go func() {
		defer close(l.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			began := time.Now()
			err := l.pub.Publish(ctx, loadKey(i), syncbus.WithVectorClock(map[string]uint64{"load": uint64(i)}))
			cancel()
			l.mu.Lock()
			if err != nil {
				began = time.Time{}
				l.errs++
			}
			l.started = append(l.started, began)
			l.mu.Unlock()
		}
	}()
}

// halt stops the publisher, if it runs, and waits until it has.
func (l *Load) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	if l.running {
		<-l.done
	}
}

// published returns how many publishes were made so far.
func (l *Load) published() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.started)
}

// WaitPublished waits, for at most 10s, until n more events than now are
// published (with or without an error); what says when, for the failure
// message.
func (l *Load) WaitPublished(t *testing.T, n int, what string) {
	t.Helper()
	target := l.published() + n
	warptest.Eventually(t, 10*time.Second, func() bool { return l.published() >= target }, "%d events published %s", n, what)
}

// Finish stops the load, waits until every subscription has the last event
// of what it covers (or a resync after it), and checks the invariants:
// each event published without error reached each subscription covering
// it, or — for an exact-key subscription, which keeps only its key's
// newest event — a later event of its key did, or the subscription got a
// resync after the event's publish began; no subscription got an event
// twice; every resync names its subscription's key or prefix. It logs
// what it counted, and returns the number of resyncs by subscription
// (named "r1 prefix load/", "r1 key load/0", …).
func (l *Load) Finish(t *testing.T) (resyncs map[string]int) {
	t.Helper()
	l.halt()
	l.mu.Lock()
	started := append([]time.Time(nil), l.started...)
	errs := l.errs
	l.mu.Unlock()
	if len(started) == 0 {
		t.Fatal("nothing was published")
	}
	last := len(started) - 1
	for _, s := range l.subs {
		want := last
		if s.exact {
			want = last - (last-s.key+loadKeys)%loadKeys
		}
		warptest.Eventually(t, settle, func() bool { return s.covers(want, started[want]) },
			"%s receives event %d (or a resync after it)", s, want)
	}

	resyncs = map[string]int{}
	covered, silent := 0, 0
	for _, s := range l.subs {
		got := map[uint64]int{}
		var resyncAt []time.Time
		for _, r := range s.c.Events() {
			ev := r.Event
			if ev.Op == syncbus.OpResync {
				if ev.Key != s.target {
					t.Errorf("%s: resync names %q", s, ev.Key)
				}
				resyncAt = append(resyncAt, r.At)
				continue
			}
			i, ok := ev.VectorClock["load"]
			if !ok || ev.Key != loadKey(int(i)) {
				t.Errorf("%s: delivered %+v, which the load did not publish", s, ev)
				continue
			}
			if got[i]++; got[i] == 2 {
				t.Errorf("%s: event %d delivered twice", s, i)
			}
		}
		resyncs[s.String()] = len(resyncAt)
		newest := -1 // the newest event of an exact-key subscription's key it received, scanning backwards
		for i := last; i >= 0; i-- {
			if s.exact && i%loadKeys != s.key {
				continue
			}
			if got[uint64(i)] > 0 {
				newest = max(newest, i)
				continue
			}
			if started[i].IsZero() || s.exact && newest > i {
				continue // not published, or superseded by a newer event of the key
			}
			if resyncedAfter(resyncAt, started[i]) {
				covered++
				continue
			}
			silent++
			if silent <= 10 {
				t.Errorf("%s: event %d (%s) was lost silently: neither delivered nor followed by a resync", s, i, loadKey(i))
			}
		}
	}
	if silent > 10 {
		t.Errorf("%d events lost silently in all", silent)
	}
	t.Logf("%d events published (%d publish errors); %d deliveries missed but covered by a resync; resyncs per subscription: %v",
		len(started), errs, covered, resyncs)
	return resyncs
}

// covers reports whether s received event i or a resync after it began.
func (s *loadSub) covers(i int, began time.Time) bool {
	for _, r := range s.c.Events() {
		switch {
		case r.Event.Op == syncbus.OpResync && !began.IsZero() && r.At.After(began):
			return true
		case r.Event.Op != syncbus.OpResync && r.Event.VectorClock["load"] == uint64(i):
			return true
		}
	}
	return began.IsZero()
}

func resyncedAfter(at []time.Time, t time.Time) bool {
	for _, a := range at {
		if a.After(t) {
			return true
		}
	}
	return false
}
