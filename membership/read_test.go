package membership

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/wire"
)

// heldTransport starts a transport whose reader waits until release is
// called, so that a test can queue a burst on its socket first.
func heldTransport(t *testing.T, mod func(*NetConfig), hooks netHooks) (tr *NetTransport, release func()) {
	t.Helper()
	gate := make(chan struct{})
	hooks.pause = func() <-chan struct{} { return gate }
	return newHookedTransport(t, mod, hooks), func() { close(gate) }
}

// burstDatagram returns the i-th datagram of a test burst: even ones are
// the data plane's, odd ones memberlist's, of varied sizes, some beyond the
// small buffer class; the index is in bytes 1 and 2.
func burstDatagram(i int) []byte {
	size := 3 + (i*37)%200
	switch i % 10 {
	case 4:
		size = smallDatagramSize + 1
	case 7:
		size = 40000
	}
	p := make([]byte, size)
	p[0] = 1 // memberlist's: any first byte but the marker
	if i%2 == 0 {
		p[0] = wire.Marker
	}
	p[1], p[2] = byte(i>>8), byte(i)
	for j := 3; j < size; j++ {
		p[j] = byte(i + j)
	}
	return p
}

// sendBurst sends datagrams first to first+n-1 of the test burst to tr.
func sendBurst(t *testing.T, raw *net.UDPConn, tr *NetTransport, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		if _, err := raw.WriteToUDPAddrPort(burstDatagram(i), tr.Addr()); err != nil {
			t.Fatal(err)
		}
	}
}

// batched reports whether tr's reader takes several datagrams per call.
func batched(tr *NetTransport) bool {
	_, single := tr.reader.(*singleReader)
	return !single
}

func TestNetTransportReadsBurstsInBatches(t *testing.T) {
	const total = 100 // half of them data, half memberlist's
	for _, batch := range []int{1, 4, 32} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			tr, release := heldTransport(t, func(c *NetConfig) { c.ReadBatch = batch }, netHooks{})
			raw := rawSocket(t)
			from := raw.LocalAddr().(*net.UDPAddr).AddrPort()
			sendBurst(t, raw, tr, 0, total)
			release()

			warptest.Eventually(t, 5*time.Second, func() bool {
				s := tr.Stats()
				return s.DatagramsReceived == total/2 && s.PacketsReceived == total/2
			}, "burst not read: %+v", tr.Stats())
			for i := 0; i < total; i += 2 {
				d := receive(t, tr.Datagrams(), "data datagram")
				if d.From != from || !bytes.Equal(d.Data, burstDatagram(i)) {
					t.Fatalf("data datagram %d: got %d bytes %x… from %v", i, len(d.Data), d.Data[:3], d.From)
				}
				d.Release()
			}
			for i := 1; i < total; i += 2 {
				p := receive(t, tr.PacketCh(), "memberlist packet")
				if p.From.String() != from.String() || !bytes.Equal(p.Buf, burstDatagram(i)) {
					t.Fatalf("packet %d: got %d bytes %x… from %v", i, len(p.Buf), p.Buf[:3], p.From)
				}
				// memberlist keeps the buffer: it must be a copy of about
				// the datagram's size, not a reader's 64 KiB slot.
				if cap(p.Buf) > len(p.Buf)+len(p.Buf)/8+16 {
					t.Errorf("packet %d: capacity %d for %d bytes; want a copy of its size", i, cap(p.Buf), len(p.Buf))
				}
			}
			s := tr.Stats()
			if s.DatagramsDropped != 0 || s.PacketsDropped != 0 || s.Empty != 0 || s.ReadErrors != 0 {
				t.Errorf("stats %+v", s)
			}
			switch {
			case !batched(tr):
				if s.ReadCalls != total {
					t.Errorf("%d reads for %d datagrams read one at a time", s.ReadCalls, total)
				}
			case s.ReadCalls > total/2:
				// The whole burst waited on the socket, so nearly every
				// read should have filled its batch.
				t.Errorf("%d reads for a backlog of %d in batches of %d", s.ReadCalls, total, batch)
			}
		})
	}
}

// TestNetTransportBatchedReadsDropWhatDoesNotFit checks that within one
// batch a full queue drops (and counts) its own kind only.
func TestNetTransportBatchedReadsDropWhatDoesNotFit(t *testing.T) {
	const queue, each = 8, 30
	tr, release := heldTransport(t, func(c *NetConfig) {
		c.DatagramQueue, c.PacketQueue = queue, queue
	}, netHooks{})
	raw := rawSocket(t)
	sendBurst(t, raw, tr, 0, 2*each)
	release()

	warptest.Eventually(t, 5*time.Second, func() bool {
		s := tr.Stats()
		return s.DatagramsReceived == each && s.PacketsReceived == each
	}, "burst not read: %+v", tr.Stats())
	s := tr.Stats()
	if s.DatagramsDropped != each-queue || s.PacketsDropped != each-queue {
		t.Errorf("stats %+v; want %d of each kind dropped", s, each-queue)
	}
	// The first of each kind were queued; the rest were dropped.
	for i := 0; i < 2*queue; i += 2 {
		d := receive(t, tr.Datagrams(), "data datagram")
		if !bytes.Equal(d.Data, burstDatagram(i)) {
			t.Errorf("queued data datagram: got %x…, want number %d", d.Data[:3], i)
		}
		d.Release()
		p := receive(t, tr.PacketCh(), "memberlist packet")
		if !bytes.Equal(p.Buf, burstDatagram(i+1)) {
			t.Errorf("queued packet: got %x…, want number %d", p.Buf[:3], i+1)
		}
	}
	if len(tr.Datagrams()) != 0 || len(tr.PacketCh()) != 0 {
		t.Error("more queued than the queues hold")
	}
}

// failingReader is a batched reader on a system without recvmmsg.
type failingReader struct{ reads int }

func (r *failingReader) read() (int, error) {
	r.reads++
	return 0, os.NewSyscallError("recvmmsg", syscall.ENOSYS)
}

func (r *failingReader) datagram(int) ([]byte, netip.AddrPort) {
	panic("datagram called after a failed read")
}

func TestNetTransportFallsBackToSingleReads(t *testing.T) {
	fr := &failingReader{}
	tr := newHookedTransport(t, nil, netHooks{newReader: func(*net.UDPConn, int) datagramReader { return fr }})
	a := newTestTransport(t, nil)
	for i := range 3 {
		frame := []byte{wire.Marker, byte(i)}
		if err := a.SendDatagram(tr.Addr(), frame); err != nil {
			t.Fatal(err)
		}
		expectDatagram(t, tr, a.Addr(), frame)
	}
	if s := tr.Stats(); s.ReadErrors != 0 || s.ReadCalls != 3 {
		t.Errorf("stats %+v; want no read error and one read per datagram", s)
	}
	// The loop owned the reader; the datagrams above prove it moved on.
	if fr.reads != 1 {
		t.Errorf("the failing reader was tried %d times, want once", fr.reads)
	}
}

// listenOrSkip binds a raw UDP socket of network on ip, or skips the test
// when the host has no such address (IPv6 is often disabled in containers).
func listenOrSkip(t *testing.T, network, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Skipf("no %s socket on %s: %v", network, ip, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestNetTransportFamilies sends and receives batches on IPv4, IPv6 and
// dual-stack sockets: the addresses of both families are encoded for the
// system and decoded from it.
func TestNetTransportFamilies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bind    string // the transports' address
		peerNet string // the raw peer's network and address
		peerIP  string
		reach   string // the address the transports are reached at
	}{
		{"ipv4", "127.0.0.1", "udp4", "127.0.0.1", "127.0.0.1"},
		{"ipv6", "::1", "udp6", "::1", "::1"},
		{"dual-stack/ipv4 peer", "0.0.0.0", "udp4", "127.0.0.1", "127.0.0.1"},
		{"dual-stack/ipv6 peer", "::", "udp6", "::1", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := listenOrSkip(t, tc.peerNet, tc.peerIP)
			peer := raw.LocalAddr().(*net.UDPAddr).AddrPort()
			mod := func(c *NetConfig) { c.BindAddr = tc.bind }
			tr, release := heldTransport(t, mod, netHooks{})
			other := newTestTransport(t, mod)
			at := func(x *NetTransport) netip.AddrPort {
				return netip.AddrPortFrom(netip.MustParseAddr(tc.reach), x.Addr().Port())
			}

			// Receive: a backlog from the raw peer, read in batches.
			sendBurst(t, raw, tr, 0, 10)
			release()
			for i := 0; i < 10; i += 2 {
				d := receive(t, tr.Datagrams(), "data datagram")
				if d.From != peer || !bytes.Equal(d.Data, burstDatagram(i)) {
					t.Fatalf("datagram %d from %v, want from %v", i, d.From, peer)
				}
				d.Release()
				p := receive(t, tr.PacketCh(), "memberlist packet")
				if p.From.String() != peer.String() {
					t.Fatalf("packet from %v, want from %v", p.From, peer)
				}
			}

			// Send: one frame to the raw peer and both transports.
			frame := []byte{wire.Marker, 's', 'e', 'n', 'd'}
			if err := other.SendDatagramTo([]netip.AddrPort{peer, at(tr), at(tr)}, frame); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := raw.ReadFromUDPAddrPort(buf)
			if err != nil || !bytes.Equal(buf[:n], frame) || from.Port() != other.Addr().Port() {
				t.Fatalf("raw peer read %x from %v, %v", buf[:n], from, err)
			}
			expectDatagram(t, tr, at(other), frame)
			expectDatagram(t, tr, at(other), frame)

			// memberlist's packets still go out one by one.
			if _, err := other.WriteToAddress([]byte{1, 'g'}, memberlist.Address{Addr: at(tr).String()}); err != nil {
				t.Fatal(err)
			}
			if p := receive(t, tr.PacketCh(), "memberlist packet"); p.From.String() != at(other).String() {
				t.Errorf("packet from %v, want from %v", p.From, at(other))
			}
			if s := other.Stats(); s.PacketsSent != 1 || s.DatagramsSent != 3 {
				t.Errorf("sender stats %+v", s)
			}
		})
	}
}

func TestNetConfigReadBatch(t *testing.T) {
	for _, tc := range []struct {
		batch   int
		batched bool
	}{{0, true}, {1, false}, {2, true}, {maxReadBatch, true}} {
		tr := newTestTransport(t, func(c *NetConfig) { c.ReadBatch = tc.batch })
		want := tc.batched && runtime.GOOS == "linux" // recvmmsg is Linux's
		if got := batched(tr); got != want {
			t.Errorf("ReadBatch %d: batched %v, want %v", tc.batch, got, want)
		}
	}
}
