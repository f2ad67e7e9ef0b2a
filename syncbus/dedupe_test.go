package syncbus_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/warpmesh/warp/syncbus"
)

func TestDedupeWindow(t *testing.T) {
	w := syncbus.NewDedupeWindow(3)
	ids := syncbus.NewIDGenerator()
	a, b, c, d := ids.Next(), ids.Next(), ids.Next(), ids.Next()
	for _, id := range []syncbus.EventID{a, b, c} {
		if w.Seen(id) {
			t.Fatalf("%v seen before it was recorded", id)
		}
	}
	if !w.Seen(a) || !w.Seen(c) {
		t.Error("recorded IDs not seen")
	}
	if w.Seen(d) { // evicts a, the oldest
		t.Error("new ID seen")
	}
	if w.Len() != 3 {
		t.Errorf("Len = %d, want 3", w.Len())
	}
	if w.Seen(a) {
		t.Error("evicted ID still seen")
	}
	if !w.Seen(d) || w.Seen(b) {
		// a's return evicted b.
		t.Error("window order wrong")
	}
	var zero syncbus.EventID
	first := w.Seen(zero)
	again := w.Seen(zero) // the zero ID is never recorded, so still not seen
	if first || again {
		t.Error("zero ID reported as seen")
	}
	if syncbus.NewDedupeWindow(0).Seen(a) {
		t.Error("default-size window")
	}
}

// TestDedupeWindowConcurrent: of many goroutines offering the same IDs,
// exactly one wins each.
func TestDedupeWindowConcurrent(t *testing.T) {
	w := syncbus.NewDedupeWindow(0)
	ids := syncbus.NewIDGenerator()
	list := make([]syncbus.EventID, 500)
	for i := range list {
		list[i] = ids.Next()
	}
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range list {
				if !w.Seen(id) {
					fresh.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != int64(len(list)) {
		t.Errorf("%d IDs reported new, want %d", fresh.Load(), len(list))
	}
}
