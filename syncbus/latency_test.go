package syncbus_test

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

func TestLatencyRecorderBuckets(t *testing.T) {
	r := syncbus.NewLatencyRecorder(10*time.Millisecond, time.Millisecond, 0, -time.Second, time.Millisecond)
	for _, d := range []time.Duration{-5, 0, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond, time.Hour} {
		r.Observe(d)
	}
	h := r.Histogram()
	if !slices.Equal(h.Bounds, []time.Duration{time.Millisecond, 10 * time.Millisecond}) {
		t.Errorf("Bounds = %v, want sorted, deduplicated, positive", h.Bounds)
	}
	// <=1ms: -5 (as 0), 0, 1ms; <=10ms: + 2ms, 10ms; above: 1h.
	if !slices.Equal(h.Counts, []uint64{3, 5}) || h.Count != 6 {
		t.Errorf("Counts = %v Count = %d, want [3 5] and 6", h.Counts, h.Count)
	}
	if want := time.Millisecond + 2*time.Millisecond + 10*time.Millisecond + time.Hour; h.Sum != want {
		t.Errorf("Sum = %v, want %v", h.Sum, want)
	}
	h.Counts[0] = 99 // the snapshot is a copy
	if r.Histogram().Counts[0] != 3 {
		t.Error("Histogram shares its slices with the recorder")
	}
}

func TestLatencyRecorderDefaults(t *testing.T) {
	h := syncbus.NewLatencyRecorder().Histogram()
	if !slices.Equal(h.Bounds, syncbus.DefaultLatencyBounds()) {
		t.Errorf("Bounds = %v", h.Bounds)
	}
	if h.Bounds[0] != 50*time.Microsecond || h.Bounds[len(h.Bounds)-1] != 10*time.Second || !slices.IsSorted(h.Bounds) {
		t.Errorf("default bounds %v, want 50µs..10s sorted", h.Bounds)
	}
	if h.Count != 0 || h.Quantile(0.5) != 0 {
		t.Errorf("empty histogram: Count %d, median %v", h.Count, h.Quantile(0.5))
	}
}

func TestLatencyRecorderConcurrent(t *testing.T) {
	r := syncbus.NewLatencyRecorder()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.Observe(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	h := r.Histogram()
	if h.Count != 4000 || h.Counts[len(h.Counts)-1] != 4000 {
		t.Errorf("Count %d, last bucket %d, want 4000", h.Count, h.Counts[len(h.Counts)-1])
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := syncbus.Histogram{
		Bounds: []time.Duration{1, 2, 4, 8},
		Counts: []uint64{10, 50, 90, 100}, // cumulative
		Count:  100,
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0.01, 1}, {0.1, 1}, {0.11, 2}, {0.5, 2}, {0.51, 4}, {0.9, 4}, {0.95, 8}, {1, 8},
		{0, 1}, {-1, 1}, {math.NaN(), 1}, {2, 8},
	}
	for _, c := range cases {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// Observations above the last bound report the last bound.
	h.Count = 200
	if got := h.Quantile(0.99); got != 8 {
		t.Errorf("Quantile(0.99) with overflow = %v, want the last bound", got)
	}
	if got := (syncbus.Histogram{Count: 3}).Quantile(0.5); got != 0 {
		t.Errorf("no bounds: %v", got)
	}
	// From a recorder: 90 fast observations and 10 slow ones.
	r := syncbus.NewLatencyRecorder()
	for range 90 {
		r.Observe(80 * time.Microsecond)
	}
	for range 10 {
		r.Observe(3 * time.Second)
	}
	hr := r.Histogram()
	if p50, p99 := hr.Quantile(0.5), hr.Quantile(0.99); p50 != 100*time.Microsecond || p99 != 5*time.Second {
		t.Errorf("p50 %v p99 %v, want 100µs and 5s", p50, p99)
	}
}
