package sim

import (
	"container/heap"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/internal/faults"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/wire"
)

// frameInfo is what the network knows of a datagram it carries.
type frameInfo struct {
	kind       Kind
	retransmit bool
	events     int    // events carried, for an events frame
	body       []byte // the opened frame, for rules that look inside; valid during the send only
}

// decodeBuf is the scratch space of one classification.
type decodeBuf struct {
	body []byte
	ev   wire.Events
}

func noRelease() {}

// classify opens a data-plane frame with the cluster's keys to tell what
// it carries. The returned release gives the scratch space back; info.body
// is valid until then.
func (n *Network) classify(ep *Endpoint, b []byte) (frameInfo, func()) {
	if !wire.IsFrame(b) {
		return frameInfo{kind: KindOther}, noRelease
	}
	d := n.decode.Get().(*decodeBuf)
	body, _, err := n.opener.Open(d.body[:0], b)
	if err != nil {
		n.decode.Put(d)
		if info, ok := ep.recall(b); ok {
			return info, noRelease
		}
		return frameInfo{kind: KindSealed}, noRelease
	}
	info := frameInfo{kind: KindOther, body: body}
	typ, err := wire.PeekType(body)
	if err == nil {
		switch typ {
		case wire.FrameEvents:
			if wire.DecodeEvents(body, &d.ev) == nil {
				info.kind = KindEvents
				info.retransmit = d.ev.Flags&wire.FlagRetransmit != 0
				info.events = len(d.ev.Events)
			}
		case wire.FrameAcks:
			info.kind = KindAcks
		case wire.FrameRepairRequest, wire.FrameUnavailable:
			info.kind = KindRepair
		case wire.FrameDigest:
			info.kind = KindDigest
		case wire.FrameCredit:
			info.kind = KindCredit
		}
	}
	ep.remember(b, info)
	return info, func() {
		d.body = body[:0]
		clear(d.ev.Events)
		d.ev.Events = d.ev.Events[:0]
		n.decode.Put(d)
	}
}

// item is one datagram on its way.
type item struct {
	at   time.Time
	seq  uint64
	to   *Host
	from *Host
	data []byte
}

// send carries one datagram from a host to an address: it counts it,
// holds it if the sender is paused, applies the rules and the link, and
// schedules its arrival.
func (n *Network) send(from *Host, to netip.AddrPort, data []byte, info frameInfo) {
	dst := n.HostAt(to)
	n.stats.sent(info, len(data), dst == nil || dst.zone != from.zone)

	from.mu.Lock()
	if from.paused {
		if len(from.outbox) < n.cfg.HostQueue {
			info.body = nil
			from.outbox = append(from.outbox, heldSend{to: to, data: data, info: info})
		} else {
			n.stats.drop(causePaused, 1)
		}
		from.mu.Unlock()
		return
	}
	from.mu.Unlock()
	if dst == nil {
		n.stats.drop(causeDown, 1)
		return
	}

	var v faults.Verdict
	if n.rules.Len() > 0 {
		v = n.rules.Judge(faults.Packet{From: from.addr, To: dst.addr, Kind: info.kind, Retransmit: info.retransmit, Body: info.body})
		if v.Hold != nil {
			<-v.Hold // the sender is stuck, as on a full socket buffer
		}
		if v.Drop {
			cause := causeRule
			if n.partitioned(from, dst) {
				cause = causePartition
			}
			n.stats.drop(cause, 1)
			return
		}
	}

	now := time.Now()
	from.sendMu.Lock()
	p := from.pairTo(dst)
	// Four draws per datagram whatever the settings, so that changing
	// one setting of a link does not shift the others' choices.
	uLoss, uJitter, uReorder, uDup := p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64()
	p.zl.mu.Lock()
	cfg := p.zl.cfg
	var queued time.Duration
	full := false
	if cfg.Bandwidth > 0 {
		queued, full = p.zl.enqueue(n.Sim(now.Sub(n.epoch)), len(data))
	}
	p.zl.mu.Unlock()
	if full {
		from.sendMu.Unlock()
		n.stats.drop(causeQueue, 1)
		return
	}
	if uLoss < cfg.Loss {
		from.sendMu.Unlock()
		n.stats.drop(causeLoss, 1)
		return
	}
	delay := cfg.Latency + queued + v.Delay
	if cfg.Jitter > 0 {
		delay += time.Duration(uJitter * float64(cfg.Jitter))
	}
	at := now.Add(n.Wall(delay))
	if uReorder < cfg.Reorder {
		hold := cfg.ReorderDelay
		if hold == 0 {
			hold = cfg.Latency + cfg.Jitter + time.Millisecond
		}
		at = at.Add(n.Wall(hold))
	} else {
		if at.Before(p.last) {
			at = p.last // a link delivers in order
		}
		p.last = at
	}
	copies := 1 + v.Copies
	if uDup < cfg.Duplicate {
		copies++
	}
	from.sendMu.Unlock()

	for range copies {
		it := &item{at: at, to: dst, from: from, data: data}
		if !at.After(now) {
			n.deliver(it)
		} else if !n.sched.push(it) {
			n.stats.drop(causeDown, 1) // the network is closed
		}
	}
}

// enqueue puts size bytes in the link's queue at simulated time now and
// returns how long they wait before they are on the wire, or full when the
// queue cannot take them. Called with zl.mu held.
func (zl *zoneLink) enqueue(now time.Duration, size int) (time.Duration, bool) {
	bw := zl.cfg.Bandwidth
	limit := zl.cfg.Queue
	if limit == 0 {
		limit = DefaultLinkQueue
	}
	start := max(now, zl.busyUntil)
	waiting := int64(float64(start-now) / float64(time.Second) * float64(bw))
	if waiting+int64(size) > limit {
		return 0, true
	}
	zl.busyUntil = start + time.Duration(float64(size)/float64(bw)*float64(time.Second))
	return zl.busyUntil - now, false
}

// deliver hands an arrived datagram to its host's endpoint: memberlist's
// packets and the data plane's datagrams to their own channels, each
// dropping when full so that neither holds the other back.
func (n *Network) deliver(it *item) {
	h := it.to
	h.mu.Lock()
	if h.paused {
		if len(h.inbox) < n.cfg.HostQueue {
			h.inbox = append(h.inbox, it)
		} else {
			n.stats.drop(causePaused, 1)
		}
		h.mu.Unlock()
		return
	}
	ep := h.ep
	h.mu.Unlock()
	if ep == nil || ep.dead.Load() || len(it.data) == 0 {
		n.stats.drop(causeDown, 1)
		return
	}
	if it.data[0] == wire.Marker {
		select {
		case ep.dataCh <- membership.NewDatagram(it.from.addr, it.data, nil):
			n.stats.delivered.Add(1)
		default:
			n.stats.drop(causeReceiver, 1)
		}
		return
	}
	pkt := &memberlist.Packet{Buf: it.data, From: it.from.udpAddr, Timestamp: time.Now()}
	select {
	case ep.packetCh <- pkt:
		n.stats.delivered.Add(1)
	default:
		n.stats.drop(causeReceiver, 1)
	}
}

// scheduler delivers datagrams at their arrival times: a heap ordered by
// (arrival, sequence) and one goroutine that sleeps until the earliest.
// The goroutine runs only while datagrams are on their way, so a network
// whose nodes have all closed has none left.
type scheduler struct {
	deliver func(*item)

	mu      sync.Mutex
	items   itemHeap
	seq     uint64
	running bool
	stopped bool
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

func (s *scheduler) start(deliver func(*item)) {
	s.deliver = deliver
	s.wake = make(chan struct{}, 1)
	s.done = make(chan struct{})
}

// push schedules it; false when the scheduler stopped.
func (s *scheduler) push(it *item) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	s.seq++
	it.seq = s.seq
	heap.Push(&s.items, it)
	first := s.items[0] == it
	if !s.running {
		s.running = true
		s.wg.Add(1)
		go s.run()
		first = false
	}
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// stop drops what is on its way and waits for the goroutine to exit.
func (s *scheduler) stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.items = nil
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}

func (s *scheduler) run() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*item
	for {
		now := time.Now()
		s.mu.Lock()
		for len(s.items) > 0 && !s.items[0].at.After(now) {
			due = append(due, heap.Pop(&s.items).(*item))
		}
		if len(due) == 0 && len(s.items) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		next := time.Duration(0)
		if len(s.items) > 0 {
			next = s.items[0].at.Sub(now)
		}
		s.mu.Unlock()
		for i, it := range due {
			s.deliver(it)
			due[i] = nil
		}
		if len(due) > 0 {
			due = due[:0]
			continue // more may have fallen due meanwhile
		}
		timer.Reset(next)
		select {
		case <-s.done:
			return
		case <-s.wake: // an earlier arrival; Reset above re-arms the timer
		case <-timer.C:
		}
	}
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
