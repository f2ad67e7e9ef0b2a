package membership

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/ipv4"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// receivers starts n transports on loopback and returns them with their
// addresses.
func receivers(t *testing.T, n int) ([]*NetTransport, []netip.AddrPort) {
	t.Helper()
	trs := make([]*NetTransport, n)
	addrs := make([]netip.AddrPort, n)
	for i := range trs {
		trs[i] = newTestTransport(t, nil)
		addrs[i] = trs[i].Addr()
	}
	return trs, addrs
}

// expectDatagram takes the next data datagram from r and checks that it is
// want, from from.
func expectDatagram(t *testing.T, r *NetTransport, from netip.AddrPort, want []byte) {
	t.Helper()
	d := receive(t, r.Datagrams(), fmt.Sprintf("datagram at %v", r.Addr()))
	defer d.Release()
	if d.From != from || !bytes.Equal(d.Data, want) {
		t.Fatalf("%v got %d bytes from %v, want %d bytes from %v", r.Addr(), len(d.Data), d.From, len(want), from)
	}
}

// expectNothingMore checks that no datagram is queued at any of trs.
func expectNothingMore(t *testing.T, trs ...*NetTransport) {
	t.Helper()
	for _, r := range trs {
		if n := len(r.Datagrams()); n != 0 {
			t.Errorf("%v holds %d datagrams more than sent", r.Addr(), n)
		}
	}
}

// batches reports whether tr sends with sendmmsg on this system.
func batches(tr *NetTransport) bool { return tr.bw != nil && !tr.noBatch.Load() }

func TestSendDatagramToReachesEveryAddress(t *testing.T) {
	s := newTestTransport(t, nil)
	rs, addrs := receivers(t, 5)
	sizes := []int{1, 2, 100, wire.DefaultDatagramBudget, smallDatagramSize, smallDatagramSize + 1, 9000, 60000}
	for _, size := range sizes {
		before := s.Stats()
		frame := benchFrame(size)
		if err := s.SendDatagramTo(addrs, frame); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		for _, r := range rs {
			expectDatagram(t, r, s.Addr(), frame)
		}
		after := s.Stats()
		if got := after.DatagramsSent - before.DatagramsSent; got != uint64(len(addrs)) {
			t.Errorf("%d bytes: DatagramsSent grew by %d, want %d", size, got, len(addrs))
		}
		if calls := after.SendCalls - before.SendCalls; batches(s) && calls >= uint64(len(addrs)) {
			t.Errorf("%d bytes: %d system calls for %d addresses; want a batch", size, calls, len(addrs))
		}
	}
	expectNothingMore(t, rs...)
	if st := s.Stats(); st.SendErrors != 0 || st.SendDropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSendDatagramToEdgeCases(t *testing.T) {
	s := newTestTransport(t, nil)
	rs, addrs := receivers(t, 3)
	frame := []byte{wire.Marker, 'e'}

	// No address: nothing to do, and nothing done.
	before := s.Stats()
	if err := s.SendDatagramTo(nil, frame); err != nil {
		t.Errorf("no addresses: %v", err)
	}
	if err := s.SendDatagramTo([]netip.AddrPort{}, frame); err != nil {
		t.Errorf("empty addresses: %v", err)
	}
	if st := s.Stats(); st.SendCalls != before.SendCalls || st.DatagramsSent != before.DatagramsSent {
		t.Errorf("sending to nobody made system calls: %+v", st)
	}

	// One address.
	if err := s.SendDatagramTo(addrs[:1], frame); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, rs[0], s.Addr(), frame)

	// More addresses than one batch holds, each receiver many times.
	const total = 2*sendBatchSize + 22
	many := make([]netip.AddrPort, total)
	for i := range many {
		many[i] = addrs[i%len(addrs)]
	}
	before = s.Stats()
	if err := s.SendDatagramTo(many, frame); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		for range (total - i + len(rs) - 1) / len(rs) {
			expectDatagram(t, r, s.Addr(), frame)
		}
	}
	expectNothingMore(t, rs...)
	after := s.Stats()
	if got := after.DatagramsSent - before.DatagramsSent; got != total {
		t.Errorf("DatagramsSent grew by %d, want %d", got, total)
	}
	calls := after.SendCalls - before.SendCalls
	if batches(s) && (calls < 3 || calls >= total) {
		t.Errorf("%d system calls for %d addresses in batches of %d", calls, total, sendBatchSize)
	}
}

func TestSendDatagramToConcurrentCallers(t *testing.T) {
	const senders, each = 6, 40
	s := newTestTransport(t, nil)
	rs, addrs := receivers(t, 4)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for seq := range each {
				if err := s.SendDatagramTo(addrs, []byte{wire.Marker, byte(g), byte(seq)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, r := range rs {
		seen := make(map[[2]byte]bool)
		for range senders * each {
			d := receive(t, r.Datagrams(), "datagram")
			key := [2]byte{d.Data[1], d.Data[2]}
			if len(d.Data) != 3 || seen[key] || int(key[0]) >= senders || int(key[1]) >= each {
				t.Errorf("%v: unexpected or repeated datagram %x", r.Addr(), d.Data)
			}
			seen[key] = true
			d.Release()
		}
	}
	expectNothingMore(t, rs...)
	if st := s.Stats(); st.DatagramsSent != senders*each*uint64(len(addrs)) {
		t.Errorf("DatagramsSent %d, want %d", st.DatagramsSent, senders*each*len(addrs))
	}
}

// fakeWriter wraps the transport's batched writer as a test needs: it
// counts calls, shortens batches to max messages, and fails the messages
// addressed to ports in fail the way the kernel fails them: the failing
// message ends the batch, and is reported only when it comes first.
type fakeWriter struct {
	real  batchWriter
	max   int
	fail  map[int]syscall.Errno
	calls atomic.Int64
}

func (f *fakeWriter) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	f.calls.Add(1)
	if f.max > 0 && len(ms) > f.max {
		ms = ms[:f.max]
	}
	for i, m := range ms {
		errno, ok := f.fail[m.Addr.(*net.UDPAddr).Port]
		if !ok {
			continue
		}
		if i == 0 {
			return -1, &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmmsg", errno)}
		}
		ms = ms[:i]
		break
	}
	return f.real.WriteBatch(ms, flags)
}

// newFakeSender starts a transport whose batched writer is f.
func newFakeSender(t *testing.T, f *fakeWriter) *NetTransport {
	t.Helper()
	s := newHookedTransport(t, nil, netHooks{wrapWriter: func(w batchWriter) batchWriter {
		f.real = w
		return f
	}})
	if s.bw == nil {
		t.Skip("no batched sends on this system")
	}
	return s
}

func TestSendDatagramToContinuesPartialBatches(t *testing.T) {
	f := &fakeWriter{max: 3}
	s := newFakeSender(t, f)
	rs, addrs := receivers(t, 5)
	many := append(append([]netip.AddrPort{}, addrs...), addrs...) // 10 destinations
	frame := []byte{wire.Marker, 'p'}
	if err := s.SendDatagramTo(many, frame); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		expectDatagram(t, r, s.Addr(), frame)
		expectDatagram(t, r, s.Addr(), frame)
	}
	expectNothingMore(t, rs...)
	if st := s.Stats(); st.SendCalls != 4 || f.calls.Load() != 4 || st.DatagramsSent != 10 {
		t.Errorf("10 destinations, 3 per call: %d calls (%d seen), %d sent; want 4 and 10", st.SendCalls, f.calls.Load(), st.DatagramsSent)
	}
}

func TestSendDatagramToTriesEveryAddressAndReportsTheFirstError(t *testing.T) {
	rs, addrs := receivers(t, 6)
	f := &fakeWriter{fail: map[int]syscall.Errno{
		int(addrs[1].Port()): syscall.ENOBUFS, // lost on the way: not an error
		int(addrs[3].Port()): syscall.EPERM,   // the first real error
		int(addrs[4].Port()): syscall.EACCES,  // a later one, counted only
	}}
	s := newFakeSender(t, f)
	frame := []byte{wire.Marker, 'x'}
	err := s.SendDatagramTo(addrs, frame)
	if !errors.Is(err, syscall.EPERM) {
		t.Fatalf("got %v, want the EPERM of the fourth address", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Addr == nil || oe.Addr.String() != addrs[3].String() || oe.Op != "write" {
		t.Errorf("error %#v does not name the failed destination %v", err, addrs[3])
	}
	for _, i := range []int{0, 2, 5} {
		expectDatagram(t, rs[i], s.Addr(), frame)
	}
	expectNothingMore(t, rs...)
	st := s.Stats()
	if st.DatagramsSent != 3 || st.SendDropped != 1 || st.SendErrors != 2 {
		t.Errorf("stats %+v; want 3 sent, 1 dropped, 2 errors", st)
	}

	// Only the drop: no error at all.
	f.fail = map[int]syscall.Errno{int(addrs[1].Port()): syscall.ECONNREFUSED}
	if err := s.SendDatagramTo(addrs[:3], frame); err != nil {
		t.Errorf("a dropped datagram is not an error: %v", err)
	}
	expectDatagram(t, rs[0], s.Addr(), frame)
	expectDatagram(t, rs[2], s.Addr(), frame)
}

func TestSendDatagramToKernelAndAddressErrors(t *testing.T) {
	s := newTestTransport(t, nil) // an IPv4 socket
	rs, addrs := receivers(t, 2)
	v6 := netip.MustParseAddrPort("[2001:db8::1]:7946")
	frame := []byte{wire.Marker, 'k'}

	// The kernel refuses an IPv6 peer on an IPv4 socket; the peers after
	// it are still served.
	err := s.SendDatagramTo([]netip.AddrPort{addrs[0], v6, addrs[1]}, frame)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Addr == nil || oe.Addr.String() != v6.String() {
		t.Errorf("IPv6 peer on an IPv4 socket: got %v, want an error naming %v", err, v6)
	}
	expectDatagram(t, rs[0], s.Addr(), frame)
	expectDatagram(t, rs[1], s.Addr(), frame)

	// An invalid address is an error, not a panic, and costs no one else
	// their datagram.
	err = s.SendDatagramTo([]netip.AddrPort{{}, addrs[0], addrs[1]}, frame)
	if err == nil || !errors.As(err, &oe) {
		t.Errorf("invalid address: got %v, want a *net.OpError", err)
	}
	expectDatagram(t, rs[0], s.Addr(), frame)
	expectDatagram(t, rs[1], s.Addr(), frame)
	if err := s.SendDatagramTo([]netip.AddrPort{{}}, frame); err == nil {
		t.Error("a lone invalid address was accepted")
	}
	expectNothingMore(t, rs...)
	if st := s.Stats(); st.SendErrors != 3 || st.DatagramsSent != 4 {
		t.Errorf("stats %+v; want 3 errors and 4 sent", st)
	}
}

func TestSendDatagramToFallsBackWithoutSendmmsg(t *testing.T) {
	f := &fakeWriter{fail: map[int]syscall.Errno{}}
	s := newFakeSender(t, f)
	rs, addrs := receivers(t, 3)
	for _, a := range addrs {
		f.fail[int(a.Port())] = syscall.ENOSYS
	}
	frame := []byte{wire.Marker, 'f'}
	for range 2 {
		if err := s.SendDatagramTo(addrs, frame); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			expectDatagram(t, r, s.Addr(), frame)
		}
	}
	expectNothingMore(t, rs...)
	if n := f.calls.Load(); n != 1 {
		t.Errorf("the batched writer was tried %d times; want once, then never again", n)
	}
	if st := s.Stats(); st.DatagramsSent != 6 || st.SendErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSendDatagramToShortWriterDoesNotSpin checks that a writer which
// neither sends nor fails cannot hang a sender.
func TestSendDatagramToShortWriterDoesNotSpin(t *testing.T) {
	s := newHookedTransport(t, nil, netHooks{wrapWriter: func(batchWriter) batchWriter { return stuckWriter{} }})
	if s.bw == nil {
		t.Skip("no batched sends on this system")
	}
	_, addrs := receivers(t, 2)
	if err := s.SendDatagramTo(addrs, []byte{wire.Marker}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("got %v, want io.ErrShortWrite", err)
	}
}

type stuckWriter struct{}

func (stuckWriter) WriteBatch([]ipv4.Message, int) (int, error) { return 0, nil }

func TestSendDatagramToAfterShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := NewNetTransport(NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewNetTransport(NetConfig{BindAddr: "127.0.0.1", BindPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	to := []netip.AddrPort{r.Addr(), r.Addr()}

	// Senders still at work when the transport shuts down stop with
	// ErrClosed; none hangs or panics.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				if err := s.SendDatagramTo(to, []byte{wire.Marker}); errors.Is(err, syncbus.ErrClosed) {
					return
				}
			}
		})
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return s.Stats().DatagramsSent > 0 }, "no datagram sent")
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := s.SendDatagramTo(to, []byte{wire.Marker}); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("after shutdown: %v, want ErrClosed", err)
	}
	if err := s.SendDatagramTo(nil, []byte{wire.Marker}); !errors.Is(err, syncbus.ErrClosed) {
		t.Errorf("after shutdown, no addresses: %v, want ErrClosed", err)
	}
	if err := r.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for len(r.Datagrams()) > 0 {
		(<-r.Datagrams()).Release()
	}
}

func TestIsDrop(t *testing.T) {
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", errno)}
	}
	for _, tc := range []struct {
		err  error
		drop bool
	}{
		{wrap(syscall.ECONNREFUSED), true},
		{wrap(syscall.ENOBUFS), true},
		{wrap(syscall.EHOSTUNREACH), true},
		{wrap(syscall.ENETUNREACH), true},
		{syscall.ENETDOWN, true},
		{wrap(syscall.EPERM), false},
		{wrap(syscall.EAFNOSUPPORT), false},
		{wrap(syscall.EMSGSIZE), false},
		{io.EOF, false},
		{nil, false},
	} {
		if got := isDrop(tc.err); got != tc.drop {
			t.Errorf("isDrop(%v) = %v, want %v", tc.err, got, tc.drop)
		}
	}
}
