package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// frameBudget is the largest sealed frame a bridge sends: the wire's limit
// on any transport. A broker message is not a datagram, so the bridges use
// all of it: more events per broker message.
const frameBudget = wire.MaxDatagramSize

// fastPathGap is how long after the last send a publish may skip the
// queue (see sender.enqueue): longer than a tight publishing loop takes
// per event, far shorter than the gaps of a bus that is not busy.
const fastPathGap = 50 * time.Microsecond

// maxQueued bounds the events waiting for the sender; a publisher that
// finds the queue full waits for room (or its ctx), so a burst never grows
// memory without bound.
const maxQueued = 1 << 16

// sender batches the events of Publish, RevokeLease, Relay and the
// awaiting calls into frames. Publishers queue events and get their
// sequence number at once, so numbers are dense in the order frames leave;
// one goroutine takes everything queued and packs it into as few frames as
// BatchSize and the frame budget allow. An idle bus sends an event as soon
// as the goroutine wakes. Under load — the last drain packed several events
// less than BatchInterval ago — it lingers until a frame's worth of events
// is queued or the oldest has waited BatchInterval: fewer, fuller broker
// messages for a bounded delay. This is the mesh's policy.
type sender struct {
	c *Core

	mu    sync.Mutex
	queue []wire.Event
	seq   uint64 // the last number given
	// seqTime is the latest publish time given with a number (Unix ns):
	// see number.
	seqTime int64
	firstAt time.Time // when the oldest queued event was queued
	waiters int
	room    chan struct{} // closed when the queue is drained, for waiters
	wake    chan struct{}
	// idle is true while run waits for work, inflight while a publisher
	// sends its own event (the fast path of a NonBlocking transport).
	idle, inflight bool
	lastSend       time.Time // when the last send ended
	// sentSeq is the highest number whose send ended, under sendMu;
	// digestSeq the highest a Digest announced.
	sentSeq, digestSeq uint64
	// lostFrom is the first number of the earliest send that failed since
	// the last Digest announcing a loss left (0: none), under sendMu: see
	// sendDigest.
	lostFrom uint64
	// sendMu orders the sends of run and of the fast path: a frame with
	// higher numbers never leaves before one with lower numbers.
	sendMu  sync.Mutex
	direct  ackScratch // the fast path's buffers, under sendMu
	directB wire.EventsBuilder

	// Owned by run.
	lastLen int
	lastAt  time.Time
	batch   []wire.Event
	b       wire.EventsBuilder
	body    []byte
	bufs    [][]byte // sealed frames, reused
	linger  *time.Timer
}

func newSender(c *Core) *sender {
	return &sender{c: c, room: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// number gives ev the next number, under mu. It also keeps the times of
// this node's own events in the order of their numbers: a receiver that
// sees a gap judges from the Time of the event after it whether the
// missing ones were published before its last resync (see
// Core.coveredByResync), which holds only if no missing event is later
// than the one it sees. Publishers race between stamping Time and taking
// a number (or wait for room), so a time earlier than one already given,
// here or by the Relay of an event of another node's clock, is raised to
// it: still no earlier than the publish began.
func (s *sender) number(ev *wire.Event) {
	s.seq++
	ev.Seq = s.seq
	if ev.Flags&wire.EventRelayed != 0 {
		// Its Time is its publisher's: what counts here is when it was
		// numbered.
		if now := time.Now().UnixNano(); now > s.seqTime {
			s.seqTime = now
		}
		return
	}
	if ev.Time < s.seqTime {
		ev.Time = s.seqTime
	}
	s.seqTime = ev.Time
}

// enqueue numbers ev and queues a copy. When a is not nil it is registered
// under the same number before the event can leave, so no ack can arrive
// for an await not yet known.
func (s *sender) enqueue(ctx context.Context, ev *wire.Event, a *await) error {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 && s.idle && !s.inflight && s.c.inlineAcks && time.Since(s.lastSend) > fastPathGap {
			// An idle bus on a transport that only buffers: send from the
			// caller, saving the hop to the sender goroutine. A publish
			// close on the heels of the last send goes through the queue,
			// so that a burst still shares frames.
			s.number(ev)
			if a != nil {
				a.seq = ev.Seq
				s.c.awaits.add(a)
			}
			s.inflight = true
			s.sendMu.Lock()
			s.mu.Unlock()
			s.sendDirect(ev)
			s.sentSeq = ev.Seq
			s.sendMu.Unlock()
			s.mu.Lock()
			s.inflight = false
			s.lastSend = time.Now()
			s.mu.Unlock()
			return nil
		}
		if n := len(s.queue); n < maxQueued {
			if n == 0 {
				s.firstAt = time.Now()
			}
			s.number(ev)
			if a != nil {
				a.seq = ev.Seq
				s.c.awaits.add(a)
			}
			s.queue = append(s.queue, *ev)
			s.mu.Unlock()
			if n == 0 || n+1 == s.c.cfg.BatchSize {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
			return nil
		}
		s.waiters++
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			s.leave()
			return ctx.Err()
		case <-s.c.done:
			s.leave()
			return syncbus.ErrClosed
		}
		s.leave()
	}
}

func (s *sender) leave() {
	s.mu.Lock()
	s.waiters--
	s.mu.Unlock()
}

// take swaps the queue for the batch buffer and wakes waiting publishers.
func (s *sender) take() []wire.Event {
	s.mu.Lock()
	s.batch, s.queue = s.queue, s.batch[:0]
	if s.waiters > 0 {
		close(s.room)
		s.room = make(chan struct{})
	}
	s.mu.Unlock()
	return s.batch
}

func (s *sender) run() {
	s.linger = time.NewTimer(time.Hour)
	s.linger.Stop()
	defer s.linger.Stop()
	for {
		s.setIdle(true)
		select {
		case <-s.wake:
			s.setIdle(false)
			if s.loaded() {
				s.waitForFill()
			}
			s.drain(false)
		case <-s.c.done:
			s.drain(true) // what was published before Close still leaves
			return
		}
	}
}

func (s *sender) setIdle(idle bool) {
	s.mu.Lock()
	s.idle = idle
	s.mu.Unlock()
}

// sendDirect sends one event in a frame of its own; the caller holds
// sendMu.
func (s *sender) sendDirect(ev *wire.Event) {
	c := s.c
	hdr := c.frameHeader()
	_ = s.directB.Reset(&hdr, frameBudget)
	if ok, err := s.directB.Append(ev); !ok || err != nil { // checkFits refused such events at publish
		c.c.publishErrors.Add(1)
		c.log.Error("bridge: an event does not fit a frame", "key", ev.Key, "err", err)
		return
	}
	s.direct.body = s.directB.Finish(s.direct.body[:0])
	frame, err := c.sealer.Seal(s.direct.buf[:0], s.direct.body)
	if err != nil {
		c.log.Error("bridge: sealing a frame", "err", err)
		return
	}
	s.direct.buf = frame
	c.c.batches.Add(1)
	c.c.sent.add(len(frame))
	ctx, cancel := c.sendContext(c.cfg.SendTimeout)
	err = c.tr.Publish(ctx, [][]byte{frame})
	cancel()
	if err != nil {
		c.c.publishErrors.Add(1)
		c.c.sendErrors.Add(1)
		c.refuseSend(err, 1)
		s.lost(ev.Seq)
	}
}

// lost notes, under sendMu, that the events numbered from first did not
// leave.
func (s *sender) lost(first uint64) {
	if s.lostFrom == 0 || first < s.lostFrom {
		s.lostFrom = first
	}
}

// sendDigest announces the highest number sent, when events were sent
// since the last announcement: a receiver that missed the last frames of
// a burst learns it from the digest (no later frame would show the gap).
// It holds sendMu, so the digest leaves after the frames it covers.
//
// Its Start says, as on the mesh, that every event numbered after it was
// meant for every receiver: normally Start is Seq (no claim), but after
// failed sends it is the number before the first lost one, until a digest
// saying so has left. A receiver that heard nothing of this node since
// before the loss (it forgot the node's numbering during a long outage of
// this node alone, or first heard of it after) cannot see the gap in the
// numbers, and resyncs on the digest instead.
func (s *sender) sendDigest() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sentSeq == s.digestSeq && s.lostFrom == 0 {
		return
	}
	c := s.c
	d := wire.Digest{Origin: c.name, Boot: c.boot, Seq: s.sentSeq, Start: s.sentSeq}
	notice := s.lostFrom
	if notice != 0 {
		d.Start = notice - 1
	}
	body, err := wire.AppendDigest(nil, &d, false)
	if err != nil {
		c.log.Error("bridge: encoding a digest", "err", err)
		return
	}
	frame, err := c.sealer.Seal(nil, body)
	if err != nil {
		c.log.Error("bridge: sealing a digest", "err", err)
		return
	}
	ctx, cancel := c.sendContext(c.cfg.SendTimeout)
	err = c.tr.Publish(ctx, [][]byte{frame})
	cancel()
	c.c.sent.add(len(frame))
	if err != nil {
		c.c.sendErrors.Add(1)
		c.refuseSend(err, 0)
		return
	}
	s.digestSeq = s.sentSeq
	if s.lostFrom == notice {
		s.lostFrom = 0
	}
}

// loaded reports whether events flow fast enough for lingering to fill
// frames: the last drain packed several of them, recently.
func (s *sender) loaded() bool {
	return s.c.cfg.BatchSize > 1 && s.lastLen >= 2 && time.Since(s.lastAt) < s.c.cfg.BatchInterval
}

// waitForFill waits until a frame's worth of events is queued, the oldest
// has waited BatchInterval, or the bus closes.
func (s *sender) waitForFill() {
	s.mu.Lock()
	n, first := len(s.queue), s.firstAt
	s.mu.Unlock()
	if n >= s.c.cfg.BatchSize || n == 0 {
		return
	}
	s.linger.Reset(time.Until(first.Add(s.c.cfg.BatchInterval)))
	defer s.linger.Stop()
	for {
		select {
		case <-s.linger.C:
			return
		case <-s.c.done:
			return
		case <-s.wake:
			s.mu.Lock()
			n = len(s.queue)
			s.mu.Unlock()
			if n >= s.c.cfg.BatchSize {
				return
			}
		}
	}
}

// drain sends everything queued.
func (s *sender) drain(closing bool) {
	batch := s.take()
	s.lastLen, s.lastAt = len(batch), time.Now()
	if len(batch) == 0 {
		return
	}
	s.sendMu.Lock()
	first, last := batch[0].Seq, batch[len(batch)-1].Seq
	defer func() {
		s.sentSeq = last
		s.sendMu.Unlock()
		s.mu.Lock()
		s.lastSend = time.Now()
		s.mu.Unlock()
	}()
	c := s.c
	hdr := c.frameHeader()
	frames := s.bufs[:0]
	flush := func() {
		s.body = s.b.Finish(s.body[:0])
		i := len(frames)
		var buf []byte
		if i < cap(frames) {
			buf = frames[:i+1][i][:0]
		}
		sealed, err := c.sealer.Seal(buf, s.body)
		if err != nil { // the builder keeps bodies within the budget
			c.log.Error("bridge: sealing a frame", "err", err)
			return
		}
		frames = append(frames, sealed)
	}
	_ = s.b.Reset(&hdr, frameBudget) // the header was checked by Configure
	for i := range batch {
		ev := &batch[i]
		if s.b.Len() >= c.cfg.BatchSize {
			flush()
			_ = s.b.Reset(&hdr, frameBudget)
		}
		ok, err := s.b.Append(ev)
		if err == nil && !ok {
			flush()
			_ = s.b.Reset(&hdr, frameBudget)
			ok, err = s.b.Append(ev)
		}
		if err != nil || !ok { // checkFits refused such events at publish
			c.c.publishErrors.Add(1)
			c.log.Error("bridge: an event does not fit a frame", "key", ev.Key, "err", err)
		}
		batch[i] = wire.Event{} // let the keys and clocks go
	}
	if s.b.Len() > 0 {
		flush()
	}
	s.bufs = frames
	timeout := c.cfg.SendTimeout
	if closing {
		timeout = c.closeTimeout()
	}
	c.c.batches.Add(uint64(len(frames)))
	for _, f := range frames {
		c.c.sent.add(len(f))
	}
	ctx, cancel := c.sendContext(timeout)
	err := c.tr.Publish(ctx, frames)
	cancel()
	if err != nil {
		c.c.publishErrors.Add(uint64(len(batch)))
		c.c.sendErrors.Add(1)
		c.refuseSend(err, len(batch))
		s.lost(first)
	}
}

// sendContext bounds one send by timeout. A NonBlocking transport only
// buffers and returns at once (it takes no ctx), so its sends skip
// arming and stopping a timer, on every publish and every ack.
func (c *Core) sendContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if c.nonBlocking {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), timeout)
}

// refuseSend logs a failed send, at most once a second.
func (c *Core) refuseSend(err error, events int) {
	now := time.Now().UnixNano()
	last := c.lastRefusal.Load()
	if now-last < int64(time.Second) || !c.lastRefusal.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("bridge: sending to the broker failed; receivers will resync (at most one such log a second)", "events", events, "err", err)
}

// maxPendingAcks bounds the acknowledgements waiting to be sent; beyond
// it they are dropped (and counted), and their publishers reach their
// deadlines.
const maxPendingAcks = 1 << 16

// ackReq is one frame's worth of acknowledgements to send.
type ackReq struct {
	origin string
	boot   uint64
	reply  string
	seqs   []uint64
}

// acker sends acknowledgements from its own goroutine, so a broker round
// trip (Redis, Kafka) never holds up the receiving goroutine, and acks of
// one publisher that pile up meanwhile share a frame.
type acker struct {
	c       *Core
	mu      sync.Mutex
	queue   []ackReq
	pending int
	wake    chan struct{}

	// Owned by run.
	batch   []ackReq
	scratch ackScratch
}

func newAcker(c *Core) *acker {
	return &acker{c: c, wake: make(chan struct{}, 1)}
}

// add queues acks of seqs (copied) for origin's incarnation boot.
func (a *acker) add(origin string, boot uint64, reply string, seqs []uint64) {
	a.mu.Lock()
	if a.pending+len(seqs) > maxPendingAcks {
		a.mu.Unlock()
		a.c.c.drop("ack-queue-full")
		return
	}
	a.pending += len(seqs)
	a.queue = append(a.queue, ackReq{origin: origin, boot: boot, reply: reply, seqs: append([]uint64(nil), seqs...)})
	first := len(a.queue) == 1
	a.mu.Unlock()
	if first {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// inlinePool holds the acknowledgement buffers of receiving goroutines
// that send acks themselves (NonBlocking transports).
var inlinePool = sync.Pool{New: func() any { return new(ackScratch) }}

type ackScratch struct {
	frame wire.Acks
	body  []byte
	buf   []byte
}

// sendNow sends acks of seqs from the calling goroutine.
func (a *acker) sendNow(origin string, boot uint64, reply string, seqs []uint64) {
	s := inlinePool.Get().(*ackScratch)
	a.c.sendAcks(s, ackReq{origin: origin, boot: boot, reply: reply, seqs: seqs})
	inlinePool.Put(s)
}

func (a *acker) run() {
	for {
		select {
		case <-a.wake:
			a.drain()
		case <-a.c.done:
			return
		}
	}
}

func (a *acker) drain() {
	a.mu.Lock()
	a.batch, a.queue = a.queue, a.batch[:0]
	a.pending = 0
	a.mu.Unlock()
	// Merge the requests of one publisher incarnation and reply path, in
	// order, so a burst of frames is acknowledged with one.
	for i := 0; i < len(a.batch); i++ {
		r := a.batch[i]
		if r.seqs == nil {
			continue
		}
		for j := i + 1; j < len(a.batch); j++ {
			o := &a.batch[j]
			if o.seqs != nil && o.origin == r.origin && o.boot == r.boot && o.reply == r.reply && len(r.seqs)+len(o.seqs) <= wire.MaxAckSeqs {
				r.seqs = append(r.seqs, o.seqs...)
				o.seqs = nil
			}
		}
		a.send(r)
	}
	clear(a.batch)
	a.batch = a.batch[:0]
}

func (a *acker) send(r ackReq) { a.c.sendAcks(&a.scratch, r) }

// sendAcks encodes, seals and sends one Acks frame with s's buffers.
func (c *Core) sendAcks(s *ackScratch, r ackReq) {
	s.frame = wire.Acks{Origin: r.origin, Boot: r.boot, Acks: append(s.frame.Acks[:0], wire.Ack{Node: c.name, Seqs: r.seqs, Boot: c.boot})}
	body, err := wire.AppendAcks(s.body[:0], &s.frame, false)
	if err != nil {
		c.log.Error("bridge: encoding acks", "err", err)
		return
	}
	s.body = body
	frame, err := c.ctlSealer.Seal(s.buf[:0], body)
	if err != nil {
		c.log.Error("bridge: sealing acks", "err", err)
		return
	}
	s.buf = frame
	// Counted before the send returns: the publisher may have the acks
	// (and its caller the answer) before the broker answers the sender.
	c.c.acksSent.Add(uint64(len(r.seqs)))
	c.c.sent.add(len(frame))
	ctx, cancel := c.sendContext(c.cfg.SendTimeout)
	err = c.tr.Ack(ctx, r.origin, r.reply, frame)
	cancel()
	if err != nil {
		c.c.sendErrors.Add(1)
		c.refuseSend(err, 0)
	}
}
