package syncbus_test

import (
	"context"
	"testing"

	"github.com/warpmesh/warp/syncbus"
)

// TestDispatcherSubscribeAll: an all-events subscription gets every
// invalidation and every lease revocation, overflows like a prefix
// subscription into one resync (Key ""), gets Resync's resync, and ends
// by UnsubscribeAll only for its own channel.
func TestDispatcherSubscribeAll(t *testing.T) {
	d, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	all, err := d.SubscribeAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := d.Subscribe(ctx, "k")
	ids := syncbus.NewIDGenerator()
	d.Deliver(syncbus.Event{ID: ids.Next(), Key: "k", Op: syncbus.OpInvalidate})
	d.Deliver(syncbus.Event{ID: ids.Next(), Key: "lease", Op: syncbus.OpLeaseRevoke})
	d.Deliver(syncbus.Event{ID: ids.Next(), Key: "other", Op: syncbus.OpInvalidate})
	var got []string
	for range 3 {
		ev := <-all
		got = append(got, ev.Op.String()+":"+ev.Key)
	}
	want := []string{"OpInvalidate:k", "OpLeaseRevoke:lease", "OpInvalidate:other"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("all events got %v, want %v", got, want)
		}
	}
	if ev := <-key; ev.Key != "k" || ev.Op != syncbus.OpInvalidate {
		t.Errorf("key subscription got %+v", ev)
	}
	select {
	case ev := <-key:
		t.Errorf("the key subscription got a revocation or another key: %+v", ev)
	default:
	}

	// Overflow: 4 held, then one resync standing for the rest.
	for range 6 {
		d.Deliver(syncbus.Event{ID: ids.Next(), Key: "lease", Op: syncbus.OpLeaseRevoke})
	}
	for i := range 4 {
		if ev := <-all; ev.Op != syncbus.OpLeaseRevoke {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if ev := <-all; ev.Op != syncbus.OpResync || ev.Key != "" {
		t.Fatalf("after the buffer: %+v, want a resync with Key \"\"", ev)
	}
	if st := d.Stats(); st.Dropped != 2 {
		t.Errorf("Dropped %d, want 2", st.Dropped)
	}

	// Resync reaches it like any subscription.
	if n := d.Resync("n1"); n != 2 {
		t.Errorf("Resync reached %d subscriptions, want 2", n)
	}
	if ev := <-all; ev.Op != syncbus.OpResync || ev.Origin != "n1" {
		t.Errorf("got %+v, want the resync of n1", ev)
	}

	// UnsubscribeAll ends all-events subscriptions only.
	if err := d.UnsubscribeAll(key); err != nil {
		t.Fatal(err)
	}
	d.Deliver(syncbus.Event{ID: ids.Next(), Key: "k", Op: syncbus.OpInvalidate})
	if _, ok := <-key; !ok {
		t.Fatal("UnsubscribeAll closed a key subscription")
	}
	if err := d.UnsubscribeAll(all); err != nil {
		t.Fatal(err)
	}
	for range all {
	}
	if err := d.UnsubscribeAll(all); err != nil {
		t.Errorf("second UnsubscribeAll: %v", err)
	}
	// After the last all-events subscription ended, revocations reach no
	// one but lease subscriptions.
	if n := d.Deliver(syncbus.Event{ID: ids.Next(), Key: "lease", Op: syncbus.OpLeaseRevoke}); n != 0 {
		t.Errorf("a revocation reached %d subscriptions after UnsubscribeAll", n)
	}
}
