package bench

import (
	"fmt"
	"sync"
	"time"
)

// keySet holds the invalidation keys of a run, made before any timing:
// realistic cache keys of 20 to 40 bytes, all distinct, as strings and as
// bytes (for the raw clients, which publish bytes).
type keySet struct {
	s []string
	b [][]byte
}

func newKeySet(n int) *keySet {
	k := &keySet{s: make([]string, n), b: make([][]byte, n)}
	for i := range n {
		var key string
		switch i % 4 {
		case 0:
			key = fmt.Sprintf("user:%07d:profile", i) // 20 bytes
		case 1:
			key = fmt.Sprintf("session:%09d:token", i) // 23 bytes
		case 2:
			key = fmt.Sprintf("tenant:%03d:cart:%07d:items", i%997, i) // 29 bytes
		default:
			key = fmt.Sprintf("catalog:product:%08d:price:eur", i) // 34 bytes
		}
		k.s[i], k.b[i] = key, []byte(key)
	}
	return k
}

func (k *keySet) key(i int) string   { return k.s[i%len(k.s)] }
func (k *keySet) bytes(i int) []byte { return k.b[i%len(k.b)] }

// sizeRange returns the lengths of the shortest and the longest key.
func (k *keySet) sizeRange() [2]int {
	r := [2]int{1 << 30, 0}
	for _, s := range k.s[:min(len(k.s), 8)] {
		r[0], r[1] = min(r[0], len(s)), max(r[1], len(s))
	}
	return r
}

// receiver is one subscriber of a system, fed by that system's own
// delivery path (a subscription channel, a client callback, a socket
// reader). Within a flood it stores every key in a map, as a cache would,
// and counts; within a latency phase it hands each key to the prober.
// It is safe for concurrent use.
type receiver struct {
	probe chan string

	mu      sync.Mutex
	probing bool
	keys    map[string]struct{}
	n       uint64
	resyncs uint64
	last    time.Time
	target  uint64
	done    chan struct{} // closed when n reaches target
	missed  uint64        // keys the prober was too slow for
}

func newReceiver() *receiver {
	return &receiver{probe: make(chan string, 1024), keys: map[string]struct{}{}}
}

// deliver hands one delivered key to the receiver.
func (r *receiver) deliver(key string) {
	r.mu.Lock()
	if r.probing {
		r.mu.Unlock()
		select {
		case r.probe <- key:
		default:
			r.mu.Lock()
			r.missed++
			r.mu.Unlock()
		}
		return
	}
	r.keys[key] = struct{}{}
	r.n++
	r.last = time.Now()
	if r.n == r.target && r.done != nil {
		close(r.done)
		r.done = nil
	}
	r.mu.Unlock()
}

// resync counts one resync event: the bus announced that events may have
// been lost.
func (r *receiver) resync() {
	r.mu.Lock()
	r.resyncs++
	r.mu.Unlock()
}

// setProbing switches between handing keys to the prober (latency
// phases) and storing and counting them.
func (r *receiver) setProbing(on bool) {
	r.mu.Lock()
	r.probing = on
	r.mu.Unlock()
	for {
		select {
		case <-r.probe:
		default:
			return
		}
	}
}

// reset starts a flood of target events: the map, the counts and the
// time of the last delivery start afresh. The returned channel is closed
// when target events were delivered.
func (r *receiver) reset(target uint64) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = make(map[string]struct{}, min(target, 1<<20))
	r.n, r.resyncs, r.last, r.target = 0, 0, time.Time{}, target
	r.done = make(chan struct{})
	return r.done
}

// counts returns the deliveries and resyncs since the last reset, and the
// time of the last delivery.
func (r *receiver) counts() (n, resyncs uint64, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.resyncs, r.last
}

// stored returns how many distinct keys the receiver stored since the
// last reset.
func (r *receiver) stored() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}
