package syncbus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

func newDispatcher(t testing.TB, buf int) *syncbus.Dispatcher {
	t.Helper()
	d, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: buf})
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

func inv(key string, n uint64) syncbus.Event {
	return syncbus.Event{Key: key, Op: syncbus.OpInvalidate, VectorClock: map[string]uint64{"n": n}}
}

func num(ev syncbus.Event) uint64 { return ev.VectorClock["n"] }

// recv returns the event waiting in ch, failing if none is there.
func recv(t *testing.T, ch <-chan syncbus.Event) syncbus.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return ev
	default:
		t.Fatal("no event waiting")
	}
	return syncbus.Event{}
}

func empty(t *testing.T, ch <-chan syncbus.Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		t.Fatalf("unexpected receive: %+v (open %v)", ev, ok)
	default:
	}
}

// closedWithin waits for ch to be closed, reading whatever precedes it.
func closedWithin(t *testing.T, ch <-chan syncbus.Event, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("channel not closed within %v", d)
		}
	}
}

func TestNewDispatcherConfig(t *testing.T) {
	for _, buf := range []int{-1, syncbus.MaxPrefixBuffer + 1} {
		if _, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: buf}); err == nil {
			t.Errorf("PrefixBuffer %d: got nil error", buf)
		}
	}
	d, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if d.PrefixBuffer() != syncbus.DefaultPrefixBuffer {
		t.Errorf("PrefixBuffer() = %d, want %d", d.PrefixBuffer(), syncbus.DefaultPrefixBuffer)
	}
	d.Close()
}

func TestDispatcherRouting(t *testing.T) {
	d := newDispatcher(t, 8)
	ctx := context.Background()
	key, _ := d.Subscribe(ctx, "a/1")
	leaseKey, _ := d.Subscribe(ctx, "lease:x")
	pa, _ := d.SubscribePrefix(ctx, "a/")
	pall, _ := d.SubscribePrefix(ctx, "")
	plong, _ := d.SubscribePrefix(ctx, "a/1/deeper")
	lease, _ := d.SubscribeLease(ctx, "x")

	if n := d.Deliver(inv("a/1", 1)); n != 3 {
		t.Errorf("Deliver(a/1) = %d, want 3 (key, a/, \"\")", n)
	}
	if got := recv(t, key); num(got) != 1 {
		t.Errorf("key got %+v", got)
	}
	recv(t, pa)
	recv(t, pall)
	empty(t, plong)
	empty(t, lease)

	if n := d.Deliver(syncbus.Event{Key: "x", Op: syncbus.OpLeaseRevoke}); n != 1 {
		t.Errorf("Deliver(revoke x) = %d, want 1", n)
	}
	if got := recv(t, lease); got.Op != syncbus.OpLeaseRevoke || got.Key != "x" {
		t.Errorf("lease got %+v", got)
	}
	empty(t, leaseKey)
	empty(t, pall)

	if n := d.Deliver(inv("lease:x", 2)); n != 2 {
		t.Errorf("Deliver(lease:x) = %d, want 2 (key lease:x, \"\")", n)
	}
	recv(t, leaseKey)
	recv(t, pall)
	empty(t, lease)

	for _, ev := range []syncbus.Event{
		{Key: "a/1", Op: syncbus.OpResync},
		{Key: "a/1", Op: syncbus.Op(9)},
		{Key: "", Op: syncbus.OpInvalidate},
	} {
		if n := d.Deliver(ev); n != 0 {
			t.Errorf("Deliver(%+v) = %d, want 0", ev, n)
		}
	}
	for _, ch := range []<-chan syncbus.Event{key, leaseKey, pa, pall, plong, lease} {
		empty(t, ch)
	}
	if s := d.Stats(); s.Delivered != 6 || s.Subscriptions != 6 {
		t.Errorf("Stats = %+v, want Delivered 6, Subscriptions 6", s)
	}
}

func TestDispatcherKeepsNewest(t *testing.T) {
	d := newDispatcher(t, 8)
	ch, _ := d.Subscribe(context.Background(), "k")
	for n := uint64(1); n <= 5; n++ {
		d.Deliver(inv("k", n))
	}
	if got := recv(t, ch); num(got) != 5 {
		t.Errorf("held event %d, want the newest, 5", num(got))
	}
	empty(t, ch)
	if s := d.Stats(); s.Delivered != 5 || s.Coalesced != 4 {
		t.Errorf("Stats = %+v, want Delivered 5, Coalesced 4", s)
	}
	d.Deliver(inv("k", 6))
	if got := recv(t, ch); num(got) != 6 {
		t.Errorf("after reading, got %d, want 6", num(got))
	}
}

func TestDispatcherResync(t *testing.T) {
	d := newDispatcher(t, 2)
	ctx := context.Background()
	key, _ := d.Subscribe(ctx, "k")
	held, _ := d.Subscribe(ctx, "h")
	lease, _ := d.SubscribeLease(ctx, "l")
	prefix, _ := d.SubscribePrefix(ctx, "p/")
	d.Deliver(inv("h", 1))

	if n := d.Resync("n7"); n != 3 {
		t.Errorf("Resync = %d, want 3 (the held key coalesces)", n)
	}
	for ch, want := range map[<-chan syncbus.Event]string{key: "k", lease: "l", prefix: "p/"} {
		got := recv(t, ch)
		if got.Op != syncbus.OpResync || got.Key != want || got.Origin != "n7" || got.Time.IsZero() {
			t.Errorf("got %+v, want a resync of %q from n7", got, want)
		}
	}
	if got := recv(t, held); got.Op != syncbus.OpInvalidate || num(got) != 1 {
		t.Errorf("held subscription got %+v, want its event", got)
	}
	if s := d.Stats(); s.Resyncs != 3 || s.Coalesced != 1 {
		t.Errorf("Stats = %+v, want Resyncs 3, Coalesced 1", s)
	}

	// A real event replaces a waiting resync.
	d.Resync("")
	d.Deliver(inv("k", 2))
	if got := recv(t, key); got.Op != syncbus.OpInvalidate || num(got) != 2 {
		t.Errorf("key got %+v, want event 2", got)
	}
}

func TestDispatcherPrefixOverflow(t *testing.T) {
	const size = 4
	d := newDispatcher(t, size)
	ch, _ := d.SubscribePrefix(context.Background(), "p/")
	for n := uint64(1); n <= 10; n++ {
		d.Deliver(inv(fmt.Sprintf("p/%d", n), n))
	}
	for n := uint64(1); n <= size; n++ {
		if got := recv(t, ch); got.Op != syncbus.OpInvalidate || num(got) != n {
			t.Fatalf("event %d: got %+v", n, got)
		}
	}
	if got := recv(t, ch); got.Op != syncbus.OpResync || got.Key != "p/" {
		t.Fatalf("got %+v, want one resync for p/", got)
	}
	empty(t, ch)
	if s := d.Stats(); s.Delivered != size || s.Dropped != 10-size || s.Resyncs != 1 {
		t.Errorf("Stats = %+v, want Delivered %d Dropped %d Resyncs 1", s, size, 10-size)
	}
	d.Deliver(inv("p/11", 11))
	if got := recv(t, ch); num(got) != 11 {
		t.Errorf("after catching up got %+v, want event 11", got)
	}
}

// TestDispatcherPrefixPartialCatchUp: a reader that reads a little at a
// time after an overflow gets one resync for the whole episode, not one
// each time it frees a slot: events that arrive while its resync is unread
// are covered by it and dropped, and delivery resumes once it has read
// everything up to the resync.
func TestDispatcherPrefixPartialCatchUp(t *testing.T) {
	const size = 3
	d := newDispatcher(t, size)
	ch, _ := d.SubscribePrefix(context.Background(), "")
	for n := uint64(1); n <= 4; n++ { // 1..3 buffered, 4 -> resync
		d.Deliver(inv("k", n))
	}
	recv(t, ch)            // 1
	d.Deliver(inv("k", 5)) // covered by the unread resync: dropped
	recv(t, ch)            // 2
	d.Deliver(inv("k", 6)) // still covered
	if got := d.Room(); got != 0 {
		t.Errorf("room %d while the resync is unread, want 0", got)
	}
	var got []string
	for _, ev := range drainAll(ch) {
		if ev.Op == syncbus.OpResync {
			got = append(got, "R")
		} else {
			got = append(got, fmt.Sprint(num(ev)))
		}
	}
	if want := "[3 R]"; fmt.Sprint(got) != want {
		t.Errorf("reader saw %v, want %s", got, want)
	}
	d.Deliver(inv("k", 7)) // after the resync was read: delivered
	if ev := recv(t, ch); num(ev) != 7 {
		t.Errorf("after the episode got %+v, want event 7", ev)
	}
	if s := d.Stats(); s.Dropped != 3 || s.Resyncs != 1 || s.Delivered != 4 {
		t.Errorf("Stats = %+v, want Dropped 3 (4, 5, 6) Resyncs 1 Delivered 4", s)
	}
	if got := d.Room(); got != size {
		t.Errorf("room %d with an empty buffer, want %d", got, size)
	}
}

// TestDispatcherRoom: the room a bus grants credit from is the least of
// its bounded subscriptions'; exact-key subscriptions never lose events.
func TestDispatcherRoom(t *testing.T) {
	d := newDispatcher(t, 4)
	if got := d.Room(); got != math.MaxInt32 {
		t.Errorf("no subscription: room %d", got)
	}
	if _, err := d.Subscribe(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	d.Deliver(inv("k", 1))
	d.Deliver(inv("k", 2))
	if got := d.Room(); got != math.MaxInt32 {
		t.Errorf("exact-key subscription only: room %d", got)
	}
	a, _ := d.SubscribePrefix(context.Background(), "a/")
	_, _ = d.SubscribePrefix(context.Background(), "b/")
	d.Deliver(inv("a/1", 1))
	d.Deliver(inv("a/2", 2))
	if got := d.Room(); got != 2 {
		t.Errorf("room %d, want 2 (a/ holds 2 of 4)", got)
	}
	recv(t, a)
	if got := d.Room(); got != 3 {
		t.Errorf("room %d after a read, want 3", got)
	}
}

// TestDispatcherHasRoom: HasRoom is Room() > 0 through every way a prefix
// subscription loses room (filled, overflowed, a resync in its reserved
// slot) and gets it back (a read, the end of the subscription, Close).
func TestDispatcherHasRoom(t *testing.T) {
	const size = 2
	d := newDispatcher(t, size)
	check := func(step string, want bool) {
		t.Helper()
		if got := d.HasRoom(); got != want {
			t.Errorf("%s: HasRoom %v, want %v", step, got, want)
		}
		if got := d.Room() > 0; got != want {
			t.Errorf("%s: Room() > 0 is %v, want %v", step, got, want)
		}
	}
	check("no subscription", true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := d.SubscribePrefix(context.Background(), "a/")
	b, _ := d.SubscribePrefix(ctx, "b/")
	d.Deliver(inv("a/1", 1))
	check("a holds 1 of 2", true)
	d.Deliver(inv("a/2", 2))
	check("a full", false)
	recv(t, a)
	check("a read once", true)
	d.Deliver(inv("a/3", 3))
	d.Deliver(inv("a/4", 4)) // the overflow resync
	check("a overflowed", false)
	drainAll(a)
	check("a read everything, its resync included", true)

	d.Deliver(inv("b/1", 1))
	d.Deliver(inv("b/2", 2))
	check("b full", false)
	// Cancelling ctx ends b, and the room it took goes with it. Its
	// channel closes once ctx's AfterFunc has removed it.
	cancel()
	for range b {
	}
	check("b ended", true)

	d.Deliver(inv("a/5", 5))
	d.Deliver(inv("a/6", 6))
	if n := d.Resync("x"); n != 1 { // into the reserved slot
		t.Fatalf("Resync = %d, want 1", n)
	}
	check("a full, a resync in its reserved slot", false)
	if err := d.UnsubscribePrefix("a/", a); err != nil {
		t.Fatal(err)
	}
	check("a unsubscribed", true)

	c, _ := d.SubscribePrefix(context.Background(), "c/")
	d.Deliver(inv("c/1", 1))
	d.Deliver(inv("c/2", 2))
	check("c full", false)
	d.Close()
	check("closed", true)
	_ = c
}

func drainAll(ch <-chan syncbus.Event) []syncbus.Event {
	var evs []syncbus.Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func TestDispatcherPrefixResyncWhileOverflowing(t *testing.T) {
	d := newDispatcher(t, 2)
	ch, _ := d.SubscribePrefix(context.Background(), "")
	for n := uint64(1); n <= 3; n++ {
		d.Deliver(inv("k", n)) // 1, 2, then the overflow resync
	}
	if n := d.Resync("x"); n != 0 {
		t.Errorf("Resync while an overflow resync is unread = %d, want 0", n)
	}
	if evs := drainAll(ch); len(evs) != 3 || evs[2].Op != syncbus.OpResync || evs[2].Origin != "" {
		t.Errorf("reader saw %+v, want two events and the overflow resync", evs)
	}
	// Room again: a resync takes the reserved slot when the buffer is full.
	d.Deliver(inv("k", 4))
	d.Deliver(inv("k", 5))
	if n := d.Resync("y"); n != 1 {
		t.Errorf("Resync with a full buffer = %d, want 1 (reserved slot)", n)
	}
	d.Deliver(inv("k", 6)) // dropped: the resync covers it
	evs := drainAll(ch)
	if len(evs) != 3 || evs[2].Op != syncbus.OpResync || evs[2].Origin != "y" {
		t.Errorf("reader saw %+v, want 4, 5 and the resync from y", evs)
	}
}

func TestDispatcherUnsubscribe(t *testing.T) {
	d := newDispatcher(t, 4)
	ctx := context.Background()
	a, _ := d.Subscribe(ctx, "k")
	b, _ := d.Subscribe(ctx, "k")
	if err := d.Unsubscribe("k", a); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, a, time.Second)
	if err := d.Unsubscribe("k", a); err != nil {
		t.Errorf("second Unsubscribe: %v", err)
	}
	if n := d.Deliver(inv("k", 1)); n != 1 {
		t.Errorf("Deliver after one of two unsubscribed = %d, want 1", n)
	}
	recv(t, b)

	// Wrong key, wrong kind, foreign channel, nil: nothing happens.
	if err := d.Unsubscribe("other", b); err != nil {
		t.Errorf("Unsubscribe with another key: %v", err)
	}
	if err := d.UnsubscribeLease("k", b); err != nil {
		t.Errorf("UnsubscribeLease of a key subscription: %v", err)
	}
	if err := d.Unsubscribe("k", make(chan syncbus.Event)); err != nil {
		t.Errorf("Unsubscribe of a foreign channel: %v", err)
	}
	if err := d.Unsubscribe("k", nil); err != nil {
		t.Errorf("Unsubscribe(nil): %v", err)
	}
	d.Deliver(inv("k", 2))
	if got := recv(t, b); num(got) != 2 {
		t.Errorf("b got %+v after no-op unsubscribes", got)
	}

	for name, err := range map[string]error{
		"Unsubscribe":      d.Unsubscribe("", b),
		"UnsubscribeLease": d.UnsubscribeLease("", b),
	} {
		if !errors.Is(err, syncbus.ErrInvalidKey) {
			t.Errorf("%s with an empty key: %v, want ErrInvalidKey", name, err)
		}
	}
	p, _ := d.SubscribePrefix(ctx, "")
	if err := d.UnsubscribePrefix("", p); err != nil {
		t.Errorf("UnsubscribePrefix(\"\"): %v", err)
	}
	closedWithin(t, p, time.Second)
	if s := d.Stats(); s.Subscriptions != 1 {
		t.Errorf("Subscriptions = %d, want 1", s.Subscriptions)
	}
}

func TestDispatcherInvalidKey(t *testing.T) {
	d := newDispatcher(t, 4)
	ctx := context.Background()
	if _, err := d.Subscribe(ctx, ""); !errors.Is(err, syncbus.ErrInvalidKey) {
		t.Errorf("Subscribe(\"\"): %v", err)
	}
	if _, err := d.SubscribeLease(ctx, ""); !errors.Is(err, syncbus.ErrInvalidKey) {
		t.Errorf("SubscribeLease(\"\"): %v", err)
	}
}

func TestDispatcherContext(t *testing.T) {
	d := newDispatcher(t, 4)
	for _, kind := range []string{"key", "prefix", "lease"} {
		t.Run(kind, func(t *testing.T) {
			subscribe := func(ctx context.Context) (<-chan syncbus.Event, error) {
				switch kind {
				case "prefix":
					return d.SubscribePrefix(ctx, "k")
				case "lease":
					return d.SubscribeLease(ctx, "k")
				}
				return d.Subscribe(ctx, "k")
			}
			unsubscribe := func(ch <-chan syncbus.Event) error {
				switch kind {
				case "prefix":
					return d.UnsubscribePrefix("k", ch)
				case "lease":
					return d.UnsubscribeLease("k", ch)
				}
				return d.Unsubscribe("k", ch)
			}
			before := d.Stats().Subscriptions

			ctx, cancel := context.WithCancel(context.Background())
			ch, err := subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			closedWithin(t, ch, 5*time.Second)
			if err := unsubscribe(ch); err != nil {
				t.Errorf("Unsubscribe after cancel: %v", err)
			}

			ctx, cancel = context.WithCancel(context.Background())
			ch, _ = subscribe(ctx)
			if err := unsubscribe(ch); err != nil {
				t.Fatal(err)
			}
			cancel() // the AfterFunc was stopped: no second close
			closedWithin(t, ch, time.Second)

			if _, err := subscribe(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("subscribe with a cancelled ctx: %v, want context.Canceled", err)
			}
			if got := d.Stats().Subscriptions; got != before {
				t.Errorf("Subscriptions = %d, want %d", got, before)
			}
		})
	}
}

func TestDispatcherClose(t *testing.T) {
	d := newDispatcher(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chs := make([]<-chan syncbus.Event, 0, 3)
	for _, f := range []func(context.Context, string) (<-chan syncbus.Event, error){d.Subscribe, d.SubscribePrefix, d.SubscribeLease} {
		ch, err := f(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		chs = append(chs, ch)
	}
	d.Deliver(inv("k", 1))
	d.Close()
	d.Close()
	cancel() // must not close anything twice
	for _, ch := range chs {
		closedWithin(t, ch, time.Second)
	}
	if _, err := d.Subscribe(context.Background(), "k"); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if _, err := d.SubscribePrefix(context.Background(), "k"); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("SubscribePrefix after Close: %v", err)
	}
	if err := d.Unsubscribe("k", chs[0]); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("Unsubscribe after Close: %v", err)
	}
	if n := d.Deliver(inv("k", 2)); n != 0 {
		t.Errorf("Deliver after Close = %d", n)
	}
	if n := d.Resync(""); n != 0 {
		t.Errorf("Resync after Close = %d", n)
	}
	if s := d.Stats(); s.Subscriptions != 0 {
		t.Errorf("Subscriptions after Close = %d", s.Subscriptions)
	}
}

// TestDispatcherConcurrent runs delivery, resyncs, subscription churn and
// ctx cancellation at once (for -race), and checks that a steady reader
// with room for everything receives every event exactly once.
func TestDispatcherConcurrent(t *testing.T) {
	const delivers, perDeliverer = 4, 500
	d := newDispatcher(t, 1<<14) // room for every event and the churn's resyncs
	steady, err := d.SubscribePrefix(context.Background(), "c/")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg, churn sync.WaitGroup
	for g := range delivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perDeliverer {
				d.Deliver(inv(fmt.Sprintf("c/%d", i%3), uint64(g*perDeliverer+i)))
				d.Deliver(syncbus.Event{Key: "c/0", Op: syncbus.OpLeaseRevoke})
			}
		}()
	}
	for g := range 3 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithCancel(context.Background())
				key := fmt.Sprintf("c/%d", i%3)
				var ch <-chan syncbus.Event
				switch (g + i) % 3 {
				case 0:
					ch, _ = d.Subscribe(ctx, key)
				case 1:
					ch, _ = d.SubscribePrefix(ctx, "c/")
				default:
					ch, _ = d.SubscribeLease(ctx, "c/0")
				}
				drainAll(ch)
				if i%2 == 0 {
					go cancel() // races the Unsubscribe below
				}
				_ = d.Unsubscribe(key, ch)
				_ = d.UnsubscribePrefix("c/", ch)
				_ = d.UnsubscribeLease("c/0", ch)
				cancel()
				if i%50 == 0 {
					d.Resync("churn")
				}
			}
		}()
	}
	stopChurn := sync.OnceFunc(func() {
		close(stop)
		churn.Wait()
	})
	defer stopChurn()
	seen := map[uint64]int{}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for len(seen) < delivers*perDeliverer {
		select {
		case ev := <-steady:
			switch {
			case ev.Op == syncbus.OpInvalidate:
				seen[num(ev)]++
			case ev.Origin != "churn":
				t.Fatalf("overflow resync %+v: the buffer has room for everything", ev)
			}
		case <-timeout.C:
			t.Fatalf("steady reader saw %d of %d events", len(seen), delivers*perDeliverer)
		}
	}
	wg.Wait()
	stopChurn()
	for n, c := range seen {
		if c != 1 {
			t.Errorf("event %d received %d times", n, c)
		}
	}
	for _, ev := range drainAll(steady) {
		if ev.Op != syncbus.OpResync {
			t.Errorf("extra event %+v", ev)
		}
	}
	d.Close()
	closedWithin(t, steady, time.Second)
}

func TestExactKeepsNewerEventOfSameOrigin(t *testing.T) {
	d, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ch, err := d.Subscribe(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	newer := syncbus.Event{Key: "k", Origin: "a", Time: now, VectorClock: map[string]uint64{"a": 2}}
	late := syncbus.Event{Key: "k", Origin: "a", Time: now.Add(-time.Millisecond), VectorClock: map[string]uint64{"a": 1}}
	other := syncbus.Event{Key: "k", Origin: "b", Time: now.Add(-time.Second)}
	d.Deliver(newer)
	d.Deliver(late)
	if got := <-ch; got.VectorClock["a"] != 2 {
		t.Fatalf("a late event of the same origin displaced a newer one: %+v", got)
	}
	// Across origins, clocks are not comparable: the last to arrive wins.
	d.Deliver(newer)
	d.Deliver(other)
	if got := <-ch; got.Origin != "b" {
		t.Fatalf("want the last arrival from another origin, got %+v", got)
	}
	if s := d.Stats(); s.Coalesced != 2 {
		t.Fatalf("Coalesced = %d, want 2", s.Coalesced)
	}
}
