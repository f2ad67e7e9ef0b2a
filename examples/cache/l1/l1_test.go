package l1

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/syncbus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		<-tick.C
	}
}

// db is a source of truth whose loads can be held at a gate.
type db struct {
	value   atomic.Value // string
	loads   atomic.Int64
	started chan struct{} // receives when a gated load has read the value
	gate    chan struct{} // nil: loads do not wait
}

func (d *db) load(ctx context.Context, key string) (string, error) {
	d.loads.Add(1)
	v := d.value.Load().(string)
	if d.gate != nil {
		d.started <- struct{}{}
		select {
		case <-d.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return v, nil
}

func newCache(t *testing.T, d *db) *Cache[string] {
	t.Helper()
	c, err := New(1000, d.load)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestReadThroughThenHit(t *testing.T) {
	d := &db{}
	d.value.Store("v1")
	c := newCache(t, d)
	ctx := context.Background()
	if v, hit, err := c.Get(ctx, "user:1"); err != nil || hit || v != "v1" {
		t.Fatalf("first read: %q hit=%v %v", v, hit, err)
	}
	if v, hit, err := c.Get(ctx, "user:1"); err != nil || !hit || v != "v1" {
		t.Fatalf("second read: %q hit=%v %v", v, hit, err)
	}
	if d.loads.Load() != 1 {
		t.Fatalf("%d loads, want 1", d.loads.Load())
	}
	d.value.Store("v2")
	c.Invalidate("user:1")
	if v, hit, _ := c.Get(ctx, "user:1"); hit || v != "v2" {
		t.Fatalf("after invalidation: %q hit=%v, want a miss that reads v2", v, hit)
	}
}

// TestFenceKeepsARacingLoadOut plays the load-then-set race: a read loads
// the old value, the writer updates the source and its invalidation
// arrives, then the read finishes. The old value must not be cached.
func TestFenceKeepsARacingLoadOut(t *testing.T) {
	for name, invalidate := range map[string]func(*Cache[string]){
		"Invalidate":    func(c *Cache[string]) { c.Invalidate("user:1") },
		"InvalidateAll": func(c *Cache[string]) { c.InvalidateAll() },
		"resync event":  func(c *Cache[string]) { c.Apply(syncbus.Event{Op: syncbus.OpResync, Key: "user:"}) },
	} {
		t.Run(name, func(t *testing.T) {
			d := &db{started: make(chan struct{}), gate: make(chan struct{})}
			d.value.Store("old")
			c := newCache(t, d)
			got := make(chan string)
			go func() {
				v, _, _ := c.Get(context.Background(), "user:1")
				got <- v
			}()
			<-d.started // the read has the old value in hand
			d.value.Store("new")
			invalidate(c)
			close(d.gate)
			if v := <-got; v != "old" {
				t.Fatalf("the racing read returned %q", v)
			}
			if s := c.Stats(); s.Fenced != 1 {
				t.Fatalf("stats %+v, want one fenced load", s)
			}
			d.gate = nil
			if v, hit, _ := c.Get(context.Background(), "user:1"); hit || v != "new" {
				t.Fatalf("next read: %q hit=%v: the stale value was cached", v, hit)
			}
		})
	}
}

func TestFollowAppliesTheBusEvents(t *testing.T) {
	net := syncbus.NewInMemoryNetwork()
	writer, err := net.Join("writer", "a")
	if err != nil {
		t.Fatal(err)
	}
	reader, err := net.Join("reader", "b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = writer.Close(); _ = reader.Close() })

	d := &db{}
	d.value.Store("v1")
	c := newCache(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	run, err := c.Follow(ctx, reader, "user:")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); run() }()
	defer func() { cancel(); <-done }()

	for _, k := range []string{"user:1", "user:2", "user:3"} {
		if _, _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Publish(ctx, "user:1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() bool { return c.Stats().Invalidations == 1 }, "the invalidation was not applied")
	if _, hit, _ := c.Get(ctx, "user:1"); hit {
		t.Error("user:1 is still cached after its invalidation")
	}
	if _, hit, _ := c.Get(ctx, "user:2"); !hit {
		t.Error("user:2 was dropped by another key's invalidation")
	}
	// Lease revocations and other prefixes leave the cache alone.
	if err := writer.RevokeLease(ctx, "user:2"); err != nil {
		t.Fatal(err)
	}
	if err := writer.Publish(ctx, "order:2"); err != nil {
		t.Fatal(err)
	}
	if _, hit, _ := c.Get(ctx, "user:2"); !hit {
		t.Error("user:2 was dropped by an unrelated event")
	}
	c.Apply(syncbus.Event{Op: syncbus.OpResync, Key: "user:"})
	if s := c.Stats(); s.Resyncs != 1 {
		t.Fatalf("stats %+v", s)
	}
	if _, hit, _ := c.Get(ctx, "user:3"); hit {
		t.Error("a resync left user:3 cached")
	}
}
