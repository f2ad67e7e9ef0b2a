package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// target is one system under measurement, started and ready: a publisher
// and four receivers. Keys are given by index into the run's keySet.
type target interface {
	info() targetInfo
	// receivers returns the subscribers, in order; after shrink, the
	// first two are the ones left.
	receivers() []*receiver
	// publish sends key i without waiting for anything.
	publish(ctx context.Context, i int) error
	// await publishes key i and returns once the four receivers have
	// acknowledged it: PublishAndAwait(4), or the raw client's request
	// with 4 replies.
	await(ctx context.Context, i int) error
	// topology is PublishAndAwaitTopology(3) of key i (mesh and bridges).
	topology(ctx context.Context, i int) error
	// flood publishes keys [from, from+n) as fast as it can, without
	// awaiting, and returns how many publishes the bus refused
	// (backpressure); err ends the phase as failed.
	flood(ctx context.Context, from, n int) (refused int, err error)
	// traffic returns what the publisher has sent so far.
	traffic() traffic
	// shrink leaves two receivers (and their nodes or connections).
	shrink(ctx context.Context) error
	// extraCPU returns the CPU time of the system's processes outside
	// this one so far (a redis-server child), or 0.
	extraCPU() time.Duration
	// close stops the system's clients and nodes (not the servers).
	close()
}

// targetInfo describes a target's operations; an empty description means
// the target does not have that operation.
type targetInfo struct {
	eventual, await, topology string
	floods                    bool
	cpuScope                  string
}

// traffic is what a publisher sent: bytes and datagrams or broker
// messages.
type traffic struct{ bytes, msgs uint64 }

// errNotApplicable is returned by operations a target does not have.
var errNotApplicable = errors.New("not applicable")

// awaitAnswers is the raw clients' acknowledged publish: it waits until 4
// answers (replies or acks) of this publish came back on answers, telling
// them from stragglers of earlier ones with ours, or until ctx ends.
func awaitAnswers[T any](ctx context.Context, answers <-chan T, what string, ours func(T) bool) error {
	for got := 0; got < 4; {
		select {
		case a := <-answers:
			if ours(a) {
				got++
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of 4 %s: %w", got, what, ctx.Err())
		}
	}
	return nil
}

// opTimeout bounds one latency operation: on loopback each takes well
// under a millisecond (Kafka a few), so reaching it means something is
// stuck.
const opTimeout = 5 * time.Second

// measure runs every phase on t and records the figures in s.
func (r *runner) measure(ctx context.Context, s *System, t target) {
	info := t.info()
	s.CPUScope = info.cpuScope
	recv := t.receivers()
	next := 0 // the next key of the latency phases

	eventual := func(ctx context.Context, i int) error { return r.eventualOp(ctx, t, recv, i) }
	// Warm-up: connections, buffers, the scheduler and the caches.
	r.progress("%s: warm-up", s.ID)
	if info.eventual != "" {
		r.latency(ctx, s, recv, "warm-up", "", r.sz.warmupOps, &next, eventual, true)
	}
	if info.await != "" {
		r.latency(ctx, s, recv, "warm-up", "", r.sz.warmupOps, &next, t.await, true)
	}
	if info.floods {
		r.flood(ctx, s, "warm-up", t, recv, 0, min(r.sz.throughput/10, 10_000), true)
	}
	if s.Error != "" {
		return
	}

	if info.eventual != "" {
		r.progress("%s: eventual latency to 4, %d ops", s.ID, r.sz.latencyOps)
		before := t.traffic()
		s.Eventual = r.latency(ctx, s, recv, "eventual latency", info.eventual, r.sz.latencyOps, &next, eventual, false)
		if after := t.traffic(); s.Eventual != nil && s.Eventual.Ops > 0 && info.floods {
			n := float64(s.Eventual.Ops + s.Eventual.Failed)
			s.UnbatchedBytes = float64(after.bytes-before.bytes) / n
			s.UnbatchedMessages = float64(after.msgs-before.msgs) / n
		}
	}
	if info.await != "" {
		r.progress("%s: %s, %d ops", s.ID, info.await, r.sz.latencyOps)
		s.Await = r.latency(ctx, s, recv, "await latency", info.await, r.sz.latencyOps, &next, t.await, false)
	}
	if info.topology != "" {
		r.progress("%s: %s, %d ops", s.ID, info.topology, r.sz.latencyOps)
		s.Topology = r.latency(ctx, s, recv, "topology latency", info.topology, r.sz.latencyOps, &next, t.topology, false)
	}
	if !info.floods {
		return
	}
	r.progress("%s: throughput, %d events to 4 receivers", s.ID, r.sz.throughput)
	s.Throughput = r.flood(ctx, s, "throughput", t, recv, 0, r.sz.throughput, false)
	r.progress("%s: burst of %d to 4 receivers", s.ID, r.sz.burst)
	s.Burst4 = r.flood(ctx, s, "burst to 4", t, recv, 0, r.sz.burst, false)
	if s.Error != "" || r.remaining() <= 0 {
		return
	}
	sctx, cancel := r.bound(ctx, r.sz.setup)
	err := t.shrink(sctx)
	cancel()
	if err != nil {
		s.fail("leaving two receivers", err)
		return
	}
	r.progress("%s: burst of %d to 2 receivers", s.ID, r.sz.burst)
	s.Burst2 = r.flood(ctx, s, "burst to 2", t, recv[:2], 0, r.sz.burst, false)
}

// eventualOp publishes key i and waits until every receiver has it.
func (r *runner) eventualOp(ctx context.Context, t target, recv []*receiver, i int) error {
	key := r.keys.key(i)
	if err := t.publish(ctx, i); err != nil {
		return err
	}
	for _, rc := range recv {
		for got := false; !got; {
			select {
			case k := <-rc.probe:
				got = k == key // anything else is a straggler of an earlier op
			case <-ctx.Done():
				return fmt.Errorf("a receiver did not get %q: %w", key, ctx.Err())
			}
		}
	}
	return nil
}

// latency runs n operations one after another and summarises their
// durations. The phase is bounded in time; operations that fail are
// counted, and a phase where more than a tenth of them fail fails.
func (r *runner) latency(ctx context.Context, s *System, recv []*receiver, phase, what string, n int, next *int,
	op func(ctx context.Context, i int) error, warmup bool) *Latency {
	if r.remaining() <= 0 {
		if !warmup {
			s.note("%s: %v", phase, errBudget)
		}
		return nil
	}
	pctx, cancel := r.bound(ctx, r.sz.latency)
	defer cancel()
	for _, rc := range recv {
		rc.setProbing(true)
	}
	defer func() {
		for _, rc := range recv {
			rc.setProbing(false)
		}
	}()
	samples := make([]time.Duration, 0, n)
	failed, cut := 0, false
	var firstErr error
	for range n {
		if pctx.Err() != nil {
			cut = true
			break
		}
		i := *next
		*next++
		octx, ocancel := context.WithTimeout(pctx, opTimeout)
		t0 := time.Now()
		err := op(octx, i)
		d := time.Since(t0)
		ocancel()
		if err != nil {
			if pctx.Err() != nil {
				cut = true
				break
			}
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		samples = append(samples, d)
	}
	if failed > 0 && failed*10 > failed+len(samples) && !(cut && len(samples) > 0) {
		s.fail(phase, fmt.Errorf("%d of %d operations failed, the first with: %w", failed, failed+len(samples), firstErr))
	} else if failed > 0 {
		s.note("%s: %d operations failed, the first with: %v", phase, failed, firstErr)
	}
	if ctx.Err() == nil && cut && !warmup {
		s.note("%s: cut short by its time bound after %d operations", phase, len(samples))
	}
	if warmup {
		return nil
	}
	return newLatency(what, samples, failed, cut)
}

// flood publishes n keys from index from as fast as the publisher can and
// waits until every receiver has them all, or until none made progress
// for the stall period, or the phase's time bound.
func (r *runner) flood(ctx context.Context, s *System, phase string, t target, recv []*receiver, from, n int, warmup bool) *Flood {
	if n <= 0 || s.Error != "" {
		return nil
	}
	if r.remaining() <= 0 {
		if !warmup {
			s.note("%s: %v", phase, errBudget)
		}
		return nil
	}
	pctx, cancel := r.bound(ctx, r.sz.flood)
	defer cancel()
	dones := make([]<-chan struct{}, len(recv))
	for i, rc := range recv {
		dones[i] = rc.reset(uint64(n))
	}
	tr0, cpu0 := t.traffic(), processCPU()+t.extraCPU()
	start := time.Now()
	refused, err := t.flood(pctx, from, n)
	published := time.Since(start)
	if err != nil && pctx.Err() == nil {
		s.fail(phase, err)
		return nil
	}
	f := &Flood{Receivers: len(recv), Events: n, PublishErrors: refused, PublishSeconds: Seconds(published.Seconds())}
	f.CutShort = !r.waitFlood(pctx, recv, dones)
	cpu := processCPU() + t.extraCPU() - cpu0
	tr1 := t.traffic()
	if warmup {
		return nil
	}
	f.Complete = true
	f.Rate = -1
	var total uint64
	var lastAll time.Time
	for _, rc := range recv {
		got, resyncs, last := rc.counts()
		got = min(got, uint64(n))
		f.Delivered = append(f.Delivered, got)
		f.Resyncs += resyncs
		f.Lost += uint64(n) - got
		total += got
		if got < uint64(n) {
			f.Complete = false
		}
		if last.After(lastAll) {
			lastAll = last
		}
		rate := 0.0
		if d := last.Sub(start); got > 0 && d > 0 {
			rate = float64(got) / d.Seconds()
		}
		if f.Rate < 0 || rate < f.Rate {
			f.Rate = rate
		}
	}
	if !lastAll.IsZero() {
		f.Seconds = Seconds(lastAll.Sub(start).Seconds())
	}
	f.CPUSeconds = cpu.Seconds()
	if total > 0 && cpu > 0 {
		f.CPUPerMillion = cpu.Seconds() / float64(total) * 1e6
	}
	f.WireBytes = float64(tr1.bytes-tr0.bytes) / float64(n)
	f.WireMessages = float64(tr1.msgs-tr0.msgs) / float64(n)
	if f.CutShort && ctx.Err() == nil {
		s.note("%s: the phase's time bound ended the wait", phase)
	}
	return f
}

// waitFlood waits until every receiver is done, or none of them made
// progress for the stall period, or ctx ends; it reports whether every
// receiver is done or stalled (false: ctx ended the wait).
func (r *runner) waitFlood(ctx context.Context, recv []*receiver, dones []<-chan struct{}) bool {
	tick := time.NewTicker(r.sz.stall / 10)
	defer tick.Stop()
	progress := func() uint64 {
		var sum uint64
		for _, rc := range recv {
			n, resyncs, _ := rc.counts()
			sum += n + resyncs
		}
		return sum
	}
	last, lastChange := progress(), time.Now()
	for i := 0; i < len(dones); {
		select {
		case <-dones[i]:
			i++
		case <-ctx.Done():
			return false
		case now := <-tick.C:
			if p := progress(); p != last {
				last, lastChange = p, now
			} else if now.Sub(lastChange) >= r.sz.stall {
				return true
			}
		}
	}
	return true
}
