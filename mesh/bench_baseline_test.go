package mesh_test

// The baselines the mesh's targets are ratios to, measured in the same run
// as the mesh (bench_test.go): the floor of a raw UDP fanout with acks, and
// NATS core on an embedded server started here on a free port of
// 127.0.0.1 — never a server the machine may be running.

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// udpFanout is the floor of the mesh's PublishAndAwait: one socket sends a
// small datagram to four sockets, each of which replies with an ack from
// its own goroutine; an operation ends when all four acks are back. No
// encryption, encoding or protocol: the syscalls and wakeups alone.
type udpFanout struct {
	sender *net.UDPConn
	peers  []*net.UDPConn
	addrs  []netip.AddrPort
	wg     sync.WaitGroup
	out    []byte
	in     []byte
	seq    uint64
}

func startUDPFanout(tb testing.TB, receivers int) *udpFanout {
	tb.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	f := &udpFanout{sender: listen(), out: make([]byte, benchPayloadSize), in: make([]byte, 2048)}
	tb.Cleanup(func() {
		_ = f.sender.Close()
		for _, p := range f.peers {
			_ = p.Close() // ends its echo goroutine
		}
		f.wg.Wait()
	})
	for range receivers {
		p := listen()
		f.peers = append(f.peers, p)
		f.addrs = append(f.addrs, p.LocalAddr().(*net.UDPAddr).AddrPort())
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			buf := make([]byte, 2048)
			for {
				n, from, err := p.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				// The ack is the datagram's sequence number.
				_, _ = p.WriteToUDPAddrPort(buf[:min(n, 8)], from)
			}
		}()
	}
	return f
}

// op sends one datagram to every receiver and waits for all their acks.
func (f *udpFanout) op(tb testing.TB) time.Duration {
	f.seq++
	if f.seq%1024 == 1 {
		// A deadline far away turns a lost ack into a failure, not a hang;
		// setting it now and then keeps its cost out of the floor.
		if err := f.sender.SetReadDeadline(time.Now().Add(benchOpTimeout)); err != nil {
			tb.Fatal(err)
		}
	}
	msg := payload(f.out, f.seq)
	t0 := time.Now()
	for _, a := range f.addrs {
		if _, err := f.sender.WriteToUDPAddrPort(msg, a); err != nil {
			tb.Fatalf("udp send: %v", err)
		}
	}
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

// BenchmarkUDPFanout is the raw floor: one socket to four, four acks back.
func BenchmarkUDPFanout(b *testing.B) {
	b.Run("Acks4", func(b *testing.B) {
		f := startUDPFanout(b, 4)
		f.op(b)
		var lat latencies
		b.ReportAllocs()
		for b.Loop() {
			lat.add(f.op(b))
		}
		lat.report(b)
	})
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
	rcv  []*reachCounter
	subs []*nats.Subscription
	out  []byte
}

func (nb *natsBench) newThroughput(tb testing.TB, subject string) *natsThroughput {
	tb.Helper()
	t := &natsThroughput{nb: nb, out: make([]byte, benchPayloadSize)}
	for _, c := range nb.subs {
		rc := &reachCounter{}
		s, err := c.Subscribe(subject, func(*nats.Msg) { rc.add(1) })
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
		for b.Loop() {
			lat.add(req.op(b, reqSubject))
		}
		lat.report(b)
	})

	const subject = "bench.throughput"
	tp := nb.newThroughput(b, subject)
	for _, tc := range throughputPlans {
		b.Run("Throughput/"+tc.name, func(b *testing.B) {
			before := tp.dropped()
			b.ReportAllocs()
			res := tp.run(b, subject, b.N, tc.plan)
			b.StopTimer()
			reportThroughput(b, res)
			b.ReportMetric(float64(tp.dropped()-before), "drops")
		})
	}
}
