package mesh_test

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh"
)

// faultyTransport wraps a real transport and drops data-plane datagrams
// it is asked to send: at random with a given rate, or all of those to (or
// all of those from this node) while a cut is on. Membership traffic is
// never touched, so the cluster stays whole while its data plane suffers.
type faultyTransport struct {
	membership.Transport

	mu      sync.Mutex
	rng     *rand.Rand
	rate    float64
	cutTo   map[netip.AddrPort]bool
	cutAll  bool
	sent    atomic.Uint64
	dropped atomic.Uint64
}

func newFaultyTransport(t testing.TB, seed uint64, rate float64) *faultyTransport {
	t.Helper()
	nt, err := membership.NewNetTransport(membership.NetConfig{BindAddr: "127.0.0.1", BindPort: -1, DatagramQueue: 8192})
	if err != nil {
		t.Fatal(err)
	}
	return &faultyTransport{Transport: nt, rng: rand.New(rand.NewPCG(seed, 7)), rate: rate}
}

func (f *faultyTransport) SendDatagram(addr netip.AddrPort, b []byte) error {
	f.sent.Add(1)
	f.mu.Lock()
	drop := f.cutAll || f.cutTo[addr] || (f.rate > 0 && f.rng.Float64() < f.rate)
	f.mu.Unlock()
	if drop {
		f.dropped.Add(1)
		return nil
	}
	return f.Transport.SendDatagram(addr, b)
}

// cut drops every data datagram to addr (or stops doing so).
func (f *faultyTransport) cut(addr netip.AddrPort, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cutTo == nil {
		f.cutTo = map[netip.AddrPort]bool{}
	}
	f.cutTo[addr] = on
}

// silence drops every data datagram this node sends (or stops doing so).
func (f *faultyTransport) silence(on bool) {
	f.mu.Lock()
	f.cutAll = on
	f.mu.Unlock()
}

// withTransports gives node i the transport trs[i] (nil keeps the default).
func withTransports(trs []*faultyTransport, also func(i int, o *mesh.MeshOptions)) func(int, *mesh.MeshOptions) {
	return func(i int, o *mesh.MeshOptions) {
		if trs[i] != nil {
			o.Transport = trs[i]
		}
		if also != nil {
			also(i, o)
		}
	}
}
