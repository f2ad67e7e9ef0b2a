package mesh_test

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
)

// The helpers below are shared by the mesh benchmarks and their baselines
// (raw UDP, NATS), so that every scenario is timed and summarised the same
// way and the ratios in BENCHMARKS.md compare like with like.

// benchOpTimeout bounds one latency operation: on loopback every one of
// them takes well under a millisecond, so reaching it means something is
// broken, and the benchmark fails instead of hanging.
const benchOpTimeout = 5 * time.Second

// benchPayloadSize is the size of the baselines' messages: about what one
// mesh event (key, ID, time, sequence number) takes on the wire.
const benchPayloadSize = 64

// latencies collects the duration of every operation of one run, so the
// run can report percentiles rather than only the mean that ns/op gives,
// and the CPU time the whole process spent meanwhile.
type latencies struct {
	d        []time.Duration
	cpuStart time.Duration
}

// startCPU notes the process's CPU time at the start of the timed loop.
func (l *latencies) startCPU() { l.cpuStart = processCPU() }

func (l *latencies) add(d time.Duration) { l.d = append(l.d, d) }

// quantile returns the nearest-rank q-quantile (0 < q <= 1) of the
// samples, or 0 without samples.
func (l *latencies) quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// report adds the p50 and p99 of the samples to the benchmark's output, in
// microseconds, and the CPU time per operation when startCPU was called:
// on a two-core machine, CPU spent by the receivers is latency, since four
// of them share two cores.
func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(l.quantile(0.50))/float64(time.Microsecond), "p50-us")
	b.ReportMetric(float64(l.quantile(0.99))/float64(time.Microsecond), "p99-us")
	if l.cpuStart > 0 && len(l.d) > 0 {
		reportCPU(b, processCPU()-l.cpuStart, len(l.d))
	}
}

// reportCPU adds the CPU time per operation, in microseconds.
func reportCPU(b *testing.B, cpu time.Duration, ops int) {
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(ops), "cpu-us/op")
}

// payload fills buf with seq in its first 8 bytes and returns it, so a
// receiver of a baseline can tell the message of this operation from a
// stale one.
func payload(buf []byte, seq uint64) []byte {
	buf = buf[:benchPayloadSize]
	binary.BigEndian.PutUint64(buf, seq)
	return buf
}

// payloadSeq is the sequence number payload wrote, or 0 for a message too
// short to hold one.
func payloadSeq(p []byte) uint64 {
	if len(p) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// throughputResult is what a throughput run measured at its receivers.
type throughputResult struct {
	sent      uint64
	delivered []uint64        // per receiver, in this run
	elapsed   []time.Duration // per receiver: from the first send to its last event
	complete  bool            // every receiver got every event
}

// maxElapsed returns the time until the last receiver's last event.
func (r throughputResult) maxElapsed() time.Duration {
	var d time.Duration
	for _, e := range r.elapsed {
		d = max(d, e)
	}
	return d
}

// minRate returns the lowest per-receiver delivery rate in events/s.
func (r throughputResult) minRate() float64 {
	rate := math.Inf(1)
	for i, n := range r.delivered {
		if s := r.elapsed[i].Seconds(); s > 0 {
			rate = min(rate, float64(n)/s)
		} else {
			rate = 0
		}
	}
	if math.IsInf(rate, 1) {
		return 0
	}
	return rate
}

// lost returns the events missing over all receivers.
func (r throughputResult) lost() uint64 {
	var lost uint64
	for _, n := range r.delivered {
		if n < r.sent {
			lost += r.sent - n
		}
	}
	return lost
}

// benchStall is how long a throughput run waits without any receiver
// making progress before it stops waiting and reports what arrived.
const benchStall = 2 * time.Second

// awaitThroughput waits until every receiver counted base[i]+sent events,
// or until none of them made progress for stall, and returns what
// each received since start. Polling the counters only decides when to
// give up; the times come from the receivers themselves.
func awaitThroughput(start time.Time, sent uint64, base []uint64, rcv []*warptest.Counter, stall time.Duration) throughputResult {
	res := throughputResult{sent: sent, delivered: make([]uint64, len(rcv)), elapsed: make([]time.Duration, len(rcv)), complete: true}
	chans := make([]<-chan struct{}, len(rcv))
	for i, c := range rcv {
		chans[i] = c.Expect(base[i] + sent)
	}
	check := time.NewTicker(stall / 4)
	defer check.Stop()
	progress := func() uint64 {
		var total uint64
		for _, c := range rcv {
			total += c.Count()
		}
		return total
	}
	last, lastChange := progress(), time.Now()
	for i, ch := range chans {
	wait:
		for {
			select {
			case <-ch:
				res.delivered[i] = sent
				res.elapsed[i] = rcv[i].LastAt().Sub(start)
				break wait
			case now := <-check.C:
				if p := progress(); p != last {
					last, lastChange = p, now
					continue
				}
				if now.Sub(lastChange) < stall {
					continue
				}
				// Stalled: what has not arrived is lost (or resynced).
				res.complete = false
				for j := i; j < len(rcv); j++ {
					select {
					case <-chans[j]:
						res.delivered[j] = sent
						res.elapsed[j] = rcv[j].LastAt().Sub(start)
					default:
						res.delivered[j] = min(rcv[j].Count()-base[j], sent)
						res.elapsed[j] = rcv[j].LastAt().Sub(start)
					}
				}
				return res
			}
		}
	}
	return res
}

// throughputPlan says how a throughput run publishes: from how many
// goroutines and, when window > 0, in windows of that many events, each
// delivered at every receiver before the next one is published — a closed
// loop that keeps every receive queue below a window's worth of events.
type throughputPlan struct {
	publishers int
	window     int
}

// benchWindow is the window of the closed-loop throughput runs: a few
// thousand events, a hundred datagrams or so per receiver at the mesh's
// batch sizes, far below its receive queue.
const benchWindow = 4096

// namedPlan is a throughput plan and its sub-benchmark name.
type namedPlan struct {
	name string
	plan throughputPlan
}

// throughputPlans returns the throughput runs of the mesh and of NATS:
// one publishing goroutine, four, and one in windows.
func throughputPlans() []namedPlan {
	return []namedPlan{
		{"pubs=1", throughputPlan{publishers: 1}},
		{"pubs=4", throughputPlan{publishers: 4}},
		{"pubs=1/window=4096", throughputPlan{publishers: 1, window: benchWindow}},
	}
}

// runThroughput publishes n events with publish(i) (then flush, if any)
// following plan, and waits until every receiver counted them or stalled.
func runThroughput(tb testing.TB, n int, plan throughputPlan, rcv []*warptest.Counter, publish func(i int) error, flush func() error) throughputResult {
	tb.Helper()
	base := make([]uint64, len(rcv))
	for i, c := range rcv {
		base[i] = c.Count()
	}
	window := plan.window
	if window <= 0 {
		window = n
	}
	start := time.Now()
	for sent := 0; sent < n; {
		w, off := min(window, n-sent), sent
		err := publishSplit(w, plan.publishers, func(i int) error { return publish(off + i) })
		if err == nil && flush != nil {
			err = flush()
		}
		if err != nil {
			tb.Fatalf("publish: %v", err)
		}
		sent += w
		if sent == n {
			break
		}
		if res := awaitThroughput(start, uint64(sent), base, rcv, benchStall); !res.complete {
			return res // a window went missing: publishing more says nothing new
		}
	}
	return awaitThroughput(start, uint64(n), base, rcv, benchStall)
}
