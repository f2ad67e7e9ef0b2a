package membership

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
	// Cleanups run last-in first-out: the wait, registered first, runs
	// after every socket is closed.
	b.Cleanup(wg.Wait)
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

// BenchmarkSendDatagramTo4 sends one frame to the same four receivers as
// BenchmarkSendDatagram4x with one SendDatagramTo call: one sendmmsg on
// Linux.
func BenchmarkSendDatagramTo4(b *testing.B) {
	for _, size := range []int{128, wire.DefaultDatagramBudget} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			tr := newTestTransport(b, nil)
			addrs := drainedSockets(b, 4)
			frame := benchFrame(size)
			before := tr.Stats()
			b.ReportAllocs()
			b.SetBytes(int64(len(frame) * len(addrs)))
			for b.Loop() {
				if err := tr.SendDatagramTo(addrs, frame); err != nil {
					b.Fatal(err)
				}
			}
			s := tr.Stats()
			b.ReportMetric(float64(s.SendCalls-before.SendCalls)/float64(b.N), "syscalls/op")
		})
	}
}

// BenchmarkNetTransportReceiveBurst measures data-plane datagrams sent,
// received and released on loopback in bursts: a raw socket sends 64
// datagrams with one sendmmsg, the benchmark takes all 64 from Datagrams
// and releases them, and repeats. One op is one datagram. batch=1 reads
// one datagram per system call, as every transport did before batched
// reads; datagrams/read is how many the reader got per call, and cpu-ns/op
// the CPU the whole process (sender, reader and consumer) spent per
// datagram. A single sender seldom outruns the reader, so this shows the
// end-to-end cost more than the reader's capacity; see
// BenchmarkNetTransportDrain for that.
func BenchmarkNetTransportReceiveBurst(b *testing.B) {
	const burst = 64
	for _, size := range []int{128, wire.DefaultDatagramBudget} {
		for _, batch := range []int{1, 8, 32, 64} {
			b.Run(fmt.Sprintf("%dB/batch=%d", size, batch), func(b *testing.B) {
				benchReceive(b, size, batch, burst)
			})
		}
	}
}

func benchReceive(b *testing.B, size, batch, burst int) {
	r := newTestTransport(b, func(c *NetConfig) { c.ReadBatch = batch })
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
	before := r.Stats()
	cpu0, cpuOK := processCPU()
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
	cpu1, _ := processCPU()
	after := r.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
	b.ReportMetric(float64(after.DatagramsReceived-before.DatagramsReceived)/float64(max(1, after.ReadCalls-before.ReadCalls)), "datagrams/read")
	if cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkNetTransportDrain measures the reader's capacity: how fast it
// takes a backlog of data-plane datagrams off its socket and hands them
// to Datagrams, as it must when it was descheduled while peers kept
// sending. Each round holds the reader, queues 512 datagrams on the
// socket (untimed), then lets it go and times until the benchmark has
// taken and released them all. One op is one datagram.
func BenchmarkNetTransportDrain(b *testing.B) {
	const backlog = 512
	for _, size := range []int{128, wire.DefaultDatagramBudget} {
		for _, batch := range []int{1, 8, 32, 64} {
			b.Run(fmt.Sprintf("%dB/batch=%d", size, batch), func(b *testing.B) {
				benchDrain(b, size, batch, backlog)
			})
		}
	}
}

func benchDrain(b *testing.B, size, batch, backlog int) {
	var gate atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gate.Store(&open)
	r := newHookedTransport(b, func(c *NetConfig) { c.ReadBatch = batch }, netHooks{
		pause: func() <-chan struct{} { return *gate.Load() },
	})
	raw := rawSocket(b)
	_ = raw.SetWriteBuffer(defaultSocketBuffer)
	pc := ipv4.NewPacketConn(raw)
	frame := benchFrame(size)
	to := net.UDPAddrFromAddrPort(r.Addr())
	msgs := make([]ipv4.Message, backlog)
	for i := range msgs {
		msgs[i] = ipv4.Message{Buffers: [][]byte{frame}, Addr: to}
	}
	lost := time.NewTimer(time.Hour)
	defer lost.Stop()
	before := r.Stats()
	var cpu time.Duration
	cpuOK := true
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		hold := make(chan struct{})
		gate.Store(&hold)
		k := min(backlog, b.N-done)
		for sent := 0; sent < k; {
			n, err := pc.WriteBatch(msgs[sent:k], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		cpu0, ok0 := processCPU()
		b.StartTimer()
		close(hold)
		lost.Reset(5 * time.Second)
		for range k {
			select {
			case d := <-r.Datagrams():
				d.Release()
			case <-lost.C:
				b.Fatalf("datagrams lost on loopback: %+v", r.Stats())
			}
		}
		cpu1, ok1 := processCPU()
		cpu += cpu1 - cpu0
		cpuOK = cpuOK && ok0 && ok1
		done += k
	}
	b.StopTimer()
	after := r.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
	b.ReportMetric(float64(after.DatagramsReceived-before.DatagramsReceived)/float64(max(1, after.ReadCalls-before.ReadCalls)), "datagrams/read")
	if cpuOK {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}
