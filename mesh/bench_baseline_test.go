package mesh_test

// The baselines the mesh's targets are ratios to, measured in the same run
// as the mesh (bench_test.go): the floor of a raw UDP fanout with acks, and
// NATS core on an embedded server started here on a free port of
// 127.0.0.1 — never a server the machine may be running.

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/warpmesh/warp/internal/warptest"
)

// udpFanout is the floor of the mesh's PublishAndAwait: one socket sends a
// small datagram to four sockets, each of which replies with an ack; an
// operation ends when all four acks are back. No encryption, encoding or
// protocol: the syscalls and wakeups alone.
//
// With handoff, every socket is read by a goroutine that passes what it
// reads over a channel to another goroutine, as the mesh's transport passes
// datagrams to its event loop; on the sender's side that goroutine signals
// the waiting caller over a third channel, as the mesh's event loop does.
// The difference between the two shows what those goroutine hops cost.
type udpFanout struct {
	sender *net.UDPConn
	peers  []*net.UDPConn
	addrs  []netip.AddrPort
	wg     sync.WaitGroup
	out    []byte
	in     []byte
	seq    uint64

	handoff bool
	want    atomic.Uint64 // the seq whose acks the collector counts
	acked   chan struct{} // the collector's signal: all acks of want are in
	timer   *time.Timer
	done    chan struct{} // closed first on cleanup: ends the handoff goroutines
}

// udpAck is what a reading goroutine hands over: an ack's sequence number
// and where to send (or whence came) it.
type udpAck struct {
	seq  uint64
	peer netip.AddrPort
}

func startUDPFanout(tb testing.TB, receivers int, handoff bool) *udpFanout {
	tb.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	f := &udpFanout{sender: listen(), out: make([]byte, benchPayloadSize), in: make([]byte, 2048),
		handoff: handoff, acked: make(chan struct{}, 1), timer: time.NewTimer(time.Hour), done: make(chan struct{})}
	f.timer.Stop()
	tb.Cleanup(func() {
		f.timer.Stop()
		close(f.done)
		_ = f.sender.Close()
		for _, p := range f.peers {
			_ = p.Close() // ends its goroutines
		}
		f.wg.Wait()
	})
	for range receivers {
		p := listen()
		f.peers = append(f.peers, p)
		f.addrs = append(f.addrs, p.LocalAddr().(*net.UDPAddr).AddrPort())
		echo := func(a udpAck) {
			var ack [8]byte // the ack is the datagram's sequence number
			binary.BigEndian.PutUint64(ack[:], a.seq)
			_, _ = p.WriteToUDPAddrPort(ack[:], a.peer)
		}
		if !handoff {
			f.goRead(p, echo)
			continue
		}
		ch := make(chan udpAck, 1024)
		f.goRead(p, f.pass(ch))
		f.goConsume(ch, echo)
	}
	if handoff {
		ch := make(chan udpAck, 1024)
		f.goRead(f.sender, f.pass(ch))
		got := 0
		f.goConsume(ch, func(a udpAck) {
			if a.seq != f.want.Load() {
				return // a stale ack
			}
			if got++; got == len(f.addrs) {
				got = 0
				select {
				case f.acked <- struct{}{}:
				case <-f.done:
				}
			}
		})
	}
	return f
}

// goRead reads c until it is closed, handing every datagram's sequence
// number and sender to handle.
func (f *udpFanout) goRead(c *net.UDPConn, handle func(udpAck)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			handle(udpAck{seq: payloadSeq(buf[:n]), peer: from})
		}
	}()
}

// pass returns a handler that hands an ack to ch without ever blocking the
// reader (a full channel drops it, as the mesh's transport does).
func (f *udpFanout) pass(ch chan<- udpAck) func(udpAck) {
	return func(a udpAck) {
		select {
		case ch <- a:
		default:
		}
	}
}

// goConsume runs handle for everything sent on ch until cleanup.
func (f *udpFanout) goConsume(ch <-chan udpAck, handle func(udpAck)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			select {
			case a := <-ch:
				handle(a)
			case <-f.done:
				return
			}
		}
	}()
}

// op sends one datagram to every receiver and waits for all their acks.
func (f *udpFanout) op(tb testing.TB) time.Duration {
	f.seq++
	if f.handoff {
		return f.opHandoff(tb)
	}
	if f.seq%1024 == 1 {
		// A deadline far away turns a lost ack into a failure, not a hang;
		// setting it now and then keeps its cost out of the floor.
		if err := f.sender.SetReadDeadline(time.Now().Add(benchOpTimeout)); err != nil {
			tb.Fatal(err)
		}
	}
	msg := payload(f.out, f.seq)
	t0 := time.Now()
	f.send(tb, msg)
	for got := 0; got < len(f.addrs); {
		n, _, err := f.sender.ReadFromUDPAddrPort(f.in)
		if err != nil {
			tb.Fatalf("udp ack: %v", err)
		}
		if payloadSeq(f.in[:n]) == f.seq {
			got++
		}
	}
	return time.Since(t0)
}

func (f *udpFanout) opHandoff(tb testing.TB) time.Duration {
	f.want.Store(f.seq)
	msg := payload(f.out, f.seq)
	t0 := time.Now()
	f.send(tb, msg)
	f.timer.Reset(benchOpTimeout)
	select {
	case <-f.acked:
	case <-f.timer.C:
		tb.Fatalf("udp handoff: acks of %d not in within %v", f.seq, benchOpTimeout)
	}
	d := time.Since(t0)
	f.timer.Stop()
	return d
}

func (f *udpFanout) send(tb testing.TB, msg []byte) {
	for _, a := range f.addrs {
		if _, err := f.sender.WriteToUDPAddrPort(msg, a); err != nil {
			tb.Fatalf("udp send: %v", err)
		}
	}
}

// BenchmarkUDPFanout is the raw floor: one socket to four, four acks back;
// "handoff" adds the mesh's goroutine hops to it.
func BenchmarkUDPFanout(b *testing.B) {
	for _, handoff := range []bool{false, true} {
		name := "Acks4"
		if handoff {
			name += "/handoff"
		}
		b.Run(name, func(b *testing.B) {
			f := startUDPFanout(b, 4, handoff)
			f.op(b)
			var lat latencies
			b.ReportAllocs()
			lat.startCPU()
			for b.Loop() {
				lat.add(f.op(b))
			}
			lat.report(b)
		})
	}
}

// natsBench is an embedded NATS server with a publisher connection and
// four subscriber connections, the shape of the mesh benchmarks.
type natsBench struct {
	srv  *server.Server
	pub  *nats.Conn
	subs []*nats.Conn
}

func startNATS(tb testing.TB, subscribers int) *natsBench {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	nb := &natsBench{srv: srv}
	tb.Cleanup(func() {
		if nb.pub != nil {
			nb.pub.Close()
		}
		for _, c := range nb.subs {
			c.Close()
		}
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("embedded nats-server not ready")
	}
	connect := func(name string) *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(name), nats.NoReconnect())
		if err != nil {
			tb.Fatal(err)
		}
		return nc
	}
	nb.pub = connect("bench-pub")
	for i := range subscribers {
		nb.subs = append(nb.subs, connect("bench-sub-"+string(rune('0'+i))))
	}
	return nb
}

// flushAll makes sure the server has seen every subscription made so far.
func (nb *natsBench) flushAll(tb testing.TB) {
	tb.Helper()
	for _, c := range append([]*nats.Conn{nb.pub}, nb.subs...) {
		if err := c.FlushTimeout(benchOpTimeout); err != nil {
			tb.Fatal(err)
		}
	}
}

// natsPublishProbe times a core publish until all four subscribers have
// it, read from channel subscriptions as the mesh's are.
type natsPublishProbe struct {
	nb    *natsBench
	chans []chan *nats.Msg
	out   []byte
	seq   uint64
	timer *time.Timer
}

func (nb *natsBench) newPublishProbe(tb testing.TB, subject string) *natsPublishProbe {
	tb.Helper()
	p := &natsPublishProbe{nb: nb, out: make([]byte, benchPayloadSize), timer: time.NewTimer(time.Hour)}
	p.timer.Stop()
	tb.Cleanup(func() { p.timer.Stop() })
	for _, c := range nb.subs {
		ch := make(chan *nats.Msg, 64)
		if _, err := c.ChanSubscribe(subject, ch); err != nil {
			tb.Fatal(err)
		}
		p.chans = append(p.chans, ch)
	}
	nb.flushAll(tb)
	return p
}

func (p *natsPublishProbe) op(tb testing.TB, subject string) time.Duration {
	p.seq++
	msg := payload(p.out, p.seq)
	t0 := time.Now()
	if err := p.nb.pub.Publish(subject, msg); err != nil {
		tb.Fatalf("nats publish: %v", err)
	}
	p.timer.Reset(benchOpTimeout)
	for i, ch := range p.chans {
		select {
		case m := <-ch:
			if payloadSeq(m.Data) != p.seq {
				tb.Fatalf("subscriber %d: got message %d, want %d", i, payloadSeq(m.Data), p.seq)
			}
		case <-p.timer.C:
			tb.Fatalf("subscriber %d: no message within %v", i, benchOpTimeout)
		}
	}
	d := time.Since(t0)
	p.timer.Stop()
	return d
}

// natsRequestProbe times a request that four responders answer, until the
// four replies are back on the requester's inbox: NATS's closest match of
// PublishAndAwait(4).
type natsRequestProbe struct {
	nb      *natsBench
	inbox   string
	replies chan *nats.Msg
	out     []byte
	seq     uint64
	timer   *time.Timer
}

func (nb *natsBench) newRequestProbe(tb testing.TB, subject string) *natsRequestProbe {
	tb.Helper()
	p := &natsRequestProbe{nb: nb, inbox: nats.NewInbox(), replies: make(chan *nats.Msg, 64),
		out: make([]byte, benchPayloadSize), timer: time.NewTimer(time.Hour)}
	p.timer.Stop()
	tb.Cleanup(func() { p.timer.Stop() })
	for _, c := range nb.subs {
		if _, err := c.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data[:8]) }); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := nb.pub.ChanSubscribe(p.inbox, p.replies); err != nil {
		tb.Fatal(err)
	}
	nb.flushAll(tb)
	return p
}

func (p *natsRequestProbe) op(tb testing.TB, subject string) time.Duration {
	p.seq++
	msg := payload(p.out, p.seq)
	t0 := time.Now()
	if err := p.nb.pub.PublishRequest(subject, p.inbox, msg); err != nil {
		tb.Fatalf("nats request: %v", err)
	}
	p.timer.Reset(benchOpTimeout)
	for got := 0; got < len(p.nb.subs); {
		select {
		case m := <-p.replies:
			if payloadSeq(m.Data) == p.seq {
				got++
			}
		case <-p.timer.C:
			tb.Fatalf("%d of %d replies within %v", got, len(p.nb.subs), benchOpTimeout)
		}
	}
	d := time.Since(t0)
	p.timer.Stop()
	return d
}

// natsThroughput counts, per subscriber connection, the messages of one
// subject, in NATS's own callback (its fastest delivery path).
type natsThroughput struct {
	nb   *natsBench
	rcv  []*warptest.Counter
	subs []*nats.Subscription
	out  []byte
}

func (nb *natsBench) newThroughput(tb testing.TB, subject string) *natsThroughput {
	tb.Helper()
	t := &natsThroughput{nb: nb, out: make([]byte, benchPayloadSize)}
	for _, c := range nb.subs {
		rc := &warptest.Counter{}
		s, err := c.Subscribe(subject, func(*nats.Msg) { rc.Add(1) })
		if err != nil {
			tb.Fatal(err)
		}
		t.rcv, t.subs = append(t.rcv, rc), append(t.subs, s)
	}
	nb.flushAll(tb)
	return t
}

func (t *natsThroughput) run(tb testing.TB, subject string, n int, plan throughputPlan) throughputResult {
	tb.Helper()
	// Publish copies the payload into the connection's buffer, so every
	// publisher goroutine may share the same read-only one.
	msg := payload(t.out, 1)
	return runThroughput(tb, n, plan, t.rcv,
		func(int) error { return t.nb.pub.Publish(subject, msg) },
		func() error { return t.nb.pub.FlushTimeout(benchOpTimeout) })
}

// dropped returns the messages NATS's client dropped at the subscriptions
// (slow consumer).
func (t *natsThroughput) dropped() uint64 {
	var n uint64
	for _, s := range t.subs {
		if d, err := s.Dropped(); err == nil {
			n += uint64(d)
		}
	}
	return n
}

// BenchmarkNATS measures NATS core on one embedded server, started once.
func BenchmarkNATS(b *testing.B) {
	nb := startNATS(b, 4)

	// The probes subscribe once, before the first run of their
	// sub-benchmark: every -count run reuses them.
	const pubSubject, reqSubject = "bench.publish", "bench.request"
	pub := nb.newPublishProbe(b, pubSubject)
	pub.op(b, pubSubject)
	b.Run("Publish4", func(b *testing.B) {
		var lat latencies
		b.ReportAllocs()
		lat.startCPU()
		for b.Loop() {
			lat.add(pub.op(b, pubSubject))
		}
		lat.report(b)
	})

	req := nb.newRequestProbe(b, reqSubject)
	req.op(b, reqSubject)
	b.Run("Request4", func(b *testing.B) {
		var lat latencies
		b.ReportAllocs()
		lat.startCPU()
		for b.Loop() {
			lat.add(req.op(b, reqSubject))
		}
		lat.report(b)
	})

	const subject = "bench.throughput"
	tp := nb.newThroughput(b, subject)
	for _, tc := range throughputPlans() {
		b.Run("Throughput/"+tc.name, func(b *testing.B) {
			before, cpu := tp.dropped(), processCPU()
			b.ReportAllocs()
			res := tp.run(b, subject, b.N, tc.plan)
			b.StopTimer()
			reportCPU(b, processCPU()-cpu, b.N)
			reportThroughput(b, res)
			b.ReportMetric(float64(tp.dropped()-before), "drops")
		})
	}
}
