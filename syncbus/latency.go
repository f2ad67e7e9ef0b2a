package syncbus

import (
	"slices"
	"sync/atomic"
	"time"
)

// DefaultLatencyBounds returns the bucket bounds a LatencyRecorder uses when
// given none: 50µs to 10s in 1-2.5-5 steps, which covers an ack on loopback
// as well as one across regions. Each call returns a new slice.
func DefaultLatencyBounds() []time.Duration {
	return []time.Duration{
		50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	}
}

// LatencyRecorder accumulates durations into a fixed-bucket histogram with
// atomic counters, so many goroutines can observe without a lock. It is
// safe for concurrent use; create it with NewLatencyRecorder.
type LatencyRecorder struct {
	bounds []time.Duration
	// buckets[i] counts observations in (bounds[i-1], bounds[i]];
	// buckets[len(bounds)] counts those above the last bound.
	buckets []atomic.Uint64
	sum     atomic.Int64
}

// NewLatencyRecorder returns a recorder with the given bucket upper bounds
// (sorted and deduplicated; bounds <= 0 are ignored). With no usable bound
// it uses DefaultLatencyBounds.
func NewLatencyRecorder(bounds ...time.Duration) *LatencyRecorder {
	b := make([]time.Duration, 0, len(bounds))
	for _, d := range bounds {
		if d > 0 {
			b = append(b, d)
		}
	}
	slices.Sort(b)
	b = slices.Compact(b)
	if len(b) == 0 {
		b = DefaultLatencyBounds()
	}
	return &LatencyRecorder{bounds: b, buckets: make([]atomic.Uint64, len(b)+1)}
}

// Observe records one duration; a negative one counts as 0.
func (r *LatencyRecorder) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i, _ := slices.BinarySearch(r.bounds, d) // first bound >= d
	r.buckets[i].Add(1)
	r.sum.Add(int64(d))
}

// Since records the time elapsed since start.
func (r *LatencyRecorder) Since(start time.Time) { r.Observe(time.Since(start)) }

// Histogram returns a snapshot in the cumulative form of Histogram. Count is
// derived from the same bucket reads as Counts, so the snapshot is
// consistent even while other goroutines observe (Sum may lag by a few
// observations).
func (r *LatencyRecorder) Histogram() Histogram {
	h := Histogram{
		Bounds: slices.Clone(r.bounds),
		Counts: make([]uint64, len(r.bounds)),
	}
	var total uint64
	for i := range r.bounds {
		total += r.buckets[i].Load()
		h.Counts[i] = total
	}
	h.Count = total + r.buckets[len(r.bounds)].Load()
	h.Sum = time.Duration(r.sum.Load())
	return h
}
