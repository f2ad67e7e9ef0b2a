package membership

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func newTestTransport(t testing.TB, mod func(*NetConfig)) *NetTransport {
	t.Helper()
	return newHookedTransport(t, mod, netHooks{})
}

// newHookedTransport starts a transport on loopback with test hooks, and
// shuts it down when the test ends.
func newHookedTransport(t testing.TB, mod func(*NetConfig), hooks netHooks) *NetTransport {
	t.Helper()
	cfg := NetConfig{BindAddr: "127.0.0.1", BindPort: -1, Logger: testLogger()}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := newNetTransport(cfg, hooks)
	if err != nil {
		t.Fatalf("NewNetTransport: %v", err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

// receive waits for one value from ch.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within 5s", what)
		panic("unreachable")
	}
}

func rawSocket(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNetTransportSplitsByMarker(t *testing.T) {
	a := newTestTransport(t, nil)
	b := newTestTransport(t, nil)

	frame := []byte{wire.Marker, 1, 2, 3}
	if err := a.SendDatagram(b.Addr(), frame); err != nil {
		t.Fatal(err)
	}
	d := receive(t, b.Datagrams(), "data datagram")
	if d.From != a.Addr() || !bytes.Equal(d.Data, frame) {
		t.Errorf("got %v %x, want %v %x", d.From, d.Data, a.Addr(), frame)
	}
	d.Release()

	// A datagram larger than the small buffer class arrives whole too.
	big := bytes.Repeat([]byte{wire.Marker, 0xEE}, 5000)
	if err := a.SendDatagram(b.Addr(), big); err != nil {
		t.Fatal(err)
	}
	d = receive(t, b.Datagrams(), "large data datagram")
	if !bytes.Equal(d.Data, big) {
		t.Errorf("large datagram: got %d bytes, want %d", len(d.Data), len(big))
	}
	d.Release()

	gossip := []byte{2, 9, 9} // any first byte but the marker is memberlist's
	if _, err := a.WriteToAddress(gossip, memberlist.Address{Addr: b.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	p := receive(t, b.PacketCh(), "memberlist packet")
	if !bytes.Equal(p.Buf, gossip) || p.From.String() != a.Addr().String() {
		t.Errorf("got %s %x, want %s %x", p.From, p.Buf, a.Addr(), gossip)
	}
	if cap(p.Buf) > 16 {
		t.Errorf("memberlist's copy has capacity %d for %d bytes; want an exact-size copy", cap(p.Buf), len(p.Buf))
	}

	// An empty datagram belongs to nobody.
	raw := rawSocket(t)
	if _, err := raw.WriteToUDPAddrPort(nil, b.Addr()); err != nil {
		t.Fatal(err)
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return b.Stats().Empty == 1 }, "empty datagram not counted: %+v", b.Stats())

	s := b.Stats()
	if s.DatagramsReceived != 2 || s.PacketsReceived != 1 || s.DatagramsDropped != 0 || s.PacketsDropped != 0 {
		t.Errorf("stats %+v", s)
	}
	if len(b.Datagrams()) != 0 || len(b.PacketCh()) != 0 {
		t.Errorf("something was delivered twice")
	}
}

// floodThenProbe sends n datagrams of flood to tr, then keeps sending probe
// datagrams until one comes out of out: a flood of one kind that nobody
// reads must not stop the other kind.
func floodThenProbe[T any](t *testing.T, tr *NetTransport, flood, probe []byte, n int, out <-chan T) {
	t.Helper()
	raw := rawSocket(t)
	for range n {
		if _, err := raw.WriteToUDPAddrPort(flood, tr.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	got := warptest.WaitFor(5*time.Second, func() bool {
		if _, err := raw.WriteToUDPAddrPort(probe, tr.Addr()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-out:
			return true
		default:
			return false
		}
	})
	if !got {
		t.Fatalf("nothing came through after the flood: %+v", tr.Stats())
	}
}

func TestNetTransportDataFloodIsDroppedAndCounted(t *testing.T) {
	const queue = 16
	tr := newTestTransport(t, func(c *NetConfig) { c.DatagramQueue = queue })
	floodThenProbe(t, tr, []byte{wire.Marker, 'x'}, []byte{1, 'm'}, 20*queue, tr.PacketCh())

	warptest.Eventually(t, 5*time.Second, func() bool {
		s := tr.Stats()
		return s.DatagramsDropped > 0 && s.DatagramsReceived == s.DatagramsDropped+queue
	}, "want every datagram either queued or counted as dropped: %+v", tr.Stats())
	if len(tr.Datagrams()) != queue {
		t.Errorf("queue holds %d, want %d", len(tr.Datagrams()), queue)
	}
	if s := tr.Stats(); s.PacketsDropped != 0 {
		t.Errorf("memberlist packets dropped: %+v", s)
	}
	for len(tr.Datagrams()) > 0 {
		(<-tr.Datagrams()).Release()
	}
}

func TestNetTransportPacketFloodIsDroppedAndCounted(t *testing.T) {
	const queue = 16
	tr := newTestTransport(t, func(c *NetConfig) { c.PacketQueue = queue })
	floodThenProbe(t, tr, []byte{1, 'g'}, []byte{wire.Marker, 'd'}, 20*queue, tr.Datagrams())

	warptest.Eventually(t, 5*time.Second, func() bool {
		s := tr.Stats()
		return s.PacketsDropped > 0 && s.PacketsReceived == s.PacketsDropped+queue
	}, "want every packet either queued or counted as dropped: %+v", tr.Stats())
	if s := tr.Stats(); s.DatagramsDropped != 0 {
		t.Errorf("data datagrams dropped: %+v", s)
	}
}

func TestNetTransportStreams(t *testing.T) {
	a := newTestTransport(t, nil)
	b := newTestTransport(t, nil)

	c, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := receive(t, b.StreamCh(), "stream")
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}

	// Shutdown closes the connections it handed out, so a reader blocked
	// on one returns at once instead of after a TCP timeout.
	readErr := make(chan error, 1)
	go func() {
		_, err := s.Read(buf)
		readErr <- err
	}()
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, readErr, "read error after shutdown"); err == nil {
		t.Error("read on a shut down transport's stream succeeded")
	}
	if _, err := b.DialTimeout(a.Addr().String(), time.Second); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("dial after shutdown: %v, want ErrClosed", err)
	}
}

func TestNetTransportBindsOnePortForBoth(t *testing.T) {
	tr := newTestTransport(t, nil)
	port := tr.Addr().Port()
	if port == 0 {
		t.Fatal("no port bound")
	}
	// TCP listens on the UDP port.
	c, err := net.DialTimeout("tcp", tr.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("TCP on the UDP port: %v", err)
	}
	c.Close()
	receive(t, tr.StreamCh(), "stream").Close()

	// The port is taken for the next transport that asks for it.
	_, err = NewNetTransport(NetConfig{BindAddr: "127.0.0.1", BindPort: int(port)})
	if err == nil {
		t.Fatal("bound a port in use")
	}
}

func TestNetTransportShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tr, err := NewNetTransport(NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Shutdown(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	if err := tr.SendDatagram(netip.MustParseAddrPort("127.0.0.1:9"), []byte{wire.Marker}); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("send after shutdown: %v", err)
	}
	if _, err := tr.WriteTo([]byte{1}, "127.0.0.1:9"); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("write after shutdown: %v", err)
	}
}

func TestNetConfigRejectsNonsense(t *testing.T) {
	for _, c := range []NetConfig{
		{BindAddr: "not-an-ip"},
		{BindAddr: "fe80::1%eth0"},
		{BindAddr: "127.0.0.1", BindPort: -2},
		{BindAddr: "127.0.0.1", BindPort: 70000},
		{BindAddr: "127.0.0.1", DatagramQueue: -1},
		{BindAddr: "127.0.0.1", PacketQueue: -1},
		{BindAddr: "127.0.0.1", SocketBuffer: -1},
		{BindAddr: "127.0.0.1", ReadBatch: -1},
		{BindAddr: "127.0.0.1", ReadBatch: maxReadBatch + 1},
	} {
		if _, err := NewNetTransport(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}

func TestFinalAdvertiseAddr(t *testing.T) {
	tr := newTestTransport(t, nil)
	ip, port, err := tr.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) || port != int(tr.Addr().Port()) {
		t.Errorf("default: %v %d %v", ip, port, err)
	}
	ip, port, err = tr.FinalAdvertiseAddr("10.1.2.3", 7000)
	if err != nil || !ip.Equal(net.IPv4(10, 1, 2, 3)) || port != 7000 {
		t.Errorf("explicit: %v %d %v", ip, port, err)
	}
	if _, _, err := tr.FinalAdvertiseAddr("nope", 1); !errors.Is(err, ErrConfig) {
		t.Errorf("bad address: %v", err)
	}
}

func TestPickAdvertise(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		in   []netip.Addr
		want string
	}{
		{[]netip.Addr{a("127.0.0.1"), a("169.254.1.1"), a("fe80::1")}, ""},
		{[]netip.Addr{a("2001:db8::1"), a("fd00::1"), a("8.8.8.8"), a("10.0.0.7"), a("192.168.1.2")}, "10.0.0.7"},
		{[]netip.Addr{a("2001:db8::1"), a("8.8.8.8")}, "8.8.8.8"},
		{[]netip.Addr{a("2001:db8::1"), a("fd00::1")}, "fd00::1"},
		{[]netip.Addr{a("2001:db8::1")}, "2001:db8::1"},
	} {
		got, ok := pickAdvertise(tc.in)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("%v: got %v %v, want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestDatagramRelease(t *testing.T) {
	released := 0
	d := NewDatagram(netip.MustParseAddrPort("127.0.0.1:1"), []byte{wire.Marker}, func(*Datagram) { released++ })
	d.Release()
	if released != 1 || d.Data != nil {
		t.Errorf("released %d times, data %v", released, d.Data)
	}
	d.Release() // a stray second call must not recycle twice
	if released != 1 {
		t.Errorf("released %d times after a second Release", released)
	}
	NewDatagram(netip.AddrPort{}, nil, nil).Release() // no release func: nothing to do
}
