package membership

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/warpmesh/warp/wire"
)

// benchFrame returns a data-plane datagram of size bytes.
func benchFrame(size int) []byte {
	f := make([]byte, size)
	f[0] = wire.Marker
	for i := 1; i < size; i++ {
		f[i] = byte(i)
	}
	return f
}

// drainedSockets opens n UDP sockets on loopback, each read by a goroutine
// that discards what it gets, so that a sender pays for delivery as it
// would to a live peer. The goroutines end when the benchmark's cleanup
// closes the sockets.
func drainedSockets(b *testing.B, n int) []netip.AddrPort {
	b.Helper()
	addrs := make([]netip.AddrPort, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadBuffer(defaultSocketBuffer)
		addrs[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, MaxDatagramSize)
			for {
				if _, _, err := c.ReadFromUDPAddrPort(buf); errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}()
		b.Cleanup(func() { _ = c.Close() })
	}
	b.Cleanup(wg.Wait) // cleanups run last-in first-out: after the closes
	return addrs
}

// BenchmarkSendDatagram4x sends one frame to four receivers the way a
// transport without MultiSender must: four SendDatagram calls, four
// syscalls.
func BenchmarkSendDatagram4x(b *testing.B) {
	for _, size := range []int{128, wire.DefaultDatagramBudget} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			tr := newTestTransport(b, nil)
			addrs := drainedSockets(b, 4)
			frame := benchFrame(size)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame) * len(addrs)))
			for b.Loop() {
				for _, a := range addrs {
					if err := tr.SendDatagram(a, frame); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkNetTransportReceive measures how many data-plane datagrams a
// transport's reader takes off its socket per second when they arrive in
// bursts: a raw socket sends 64 datagrams with one sendmmsg, the benchmark
// takes all 64 from Datagrams and releases them, and repeats. One op is
// one datagram received and released.
func BenchmarkNetTransportReceive(b *testing.B) {
	const burst = 64
	for _, size := range []int{128, wire.DefaultDatagramBudget} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			r := newTestTransport(b, nil)
			raw := rawSocket(b)
			_ = raw.SetWriteBuffer(defaultSocketBuffer)
			pc := ipv4.NewPacketConn(raw)
			frame := benchFrame(size)
			to := net.UDPAddrFromAddrPort(r.Addr())
			msgs := make([]ipv4.Message, burst)
			for i := range msgs {
				msgs[i] = ipv4.Message{Buffers: [][]byte{frame}, Addr: to}
			}
			lost := time.NewTimer(time.Hour)
			defer lost.Stop()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(burst, b.N-done)
				for sent := 0; sent < k; {
					n, err := pc.WriteBatch(msgs[sent:k], 0)
					if err != nil {
						b.Fatal(err)
					}
					sent += n
				}
				lost.Reset(5 * time.Second)
				for range k {
					select {
					case d := <-r.Datagrams():
						d.Release()
					case <-lost.C:
						b.Fatalf("datagrams lost on loopback: %+v", r.Stats())
					}
				}
				done += k
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}
