package sim_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/sim"
	"github.com/warpmesh/warp/wire"
)

// testNet is a network with hosts a1 (zone a), b1 (zone b) and c1 (zone
// c), each listening.
type testNet struct {
	net        *sim.Network
	hosts      map[string]*sim.Host
	eps        map[string]*sim.Endpoint
	keyring    *wire.Keyring
	label      string
	sealerPool map[string]*wire.Sealer
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newTestNet(t *testing.T, cfg sim.Config) *testNet {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys, cfg.Label = [][]byte{testKey}, "t"
	}
	n, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	kr, err := wire.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNet{net: n, hosts: map[string]*sim.Host{}, eps: map[string]*sim.Endpoint{}, keyring: kr, label: "t", sealerPool: map[string]*wire.Sealer{}}
	for _, hz := range [][2]string{{"a1", "a"}, {"b1", "b"}, {"c1", "c"}} {
		h, err := n.AddHost(hz[0], hz[1])
		if err != nil {
			t.Fatal(err)
		}
		ep, err := h.Listen()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ep.Shutdown() })
		tn.hosts[hz[0]], tn.eps[hz[0]] = h, ep
	}
	return tn
}

// datagram is a data-plane datagram carrying n (not a sealed frame).
func datagram(n byte) []byte { return []byte{wire.Marker, n} }

// drain returns every datagram waiting on ep, without blocking.
func drain(ep *sim.Endpoint) [][]byte {
	var out [][]byte
	for {
		select {
		case d := <-ep.Datagrams():
			out = append(out, slices.Clone(d.Data))
			d.Release()
		default:
			return out
		}
	}
}

func TestAddresses(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	if got := tn.hosts["a1"].Addr(); got != netip.MustParseAddrPort("10.1.0.1:7946") {
		t.Errorf("a1 at %v, want 10.1.0.1:7946", got)
	}
	if got := tn.hosts["c1"].Addr(); got != netip.MustParseAddrPort("10.3.0.1:7946") {
		t.Errorf("c1 at %v, want 10.3.0.1:7946", got)
	}
	ip, port, err := tn.eps["b1"].FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal(net.ParseIP("10.2.0.1")) || port != sim.Port {
		t.Errorf("FinalAdvertiseAddr = %v %d %v, want 10.2.0.1 %d", ip, port, err, sim.Port)
	}
	if _, err := tn.net.AddHost("a1", "b"); err == nil {
		t.Error("a second host named a1 was accepted")
	}
	if _, err := tn.hosts["a1"].Listen(); !errors.Is(err, sim.ErrInUse) {
		t.Errorf("second Listen: %v, want ErrInUse", err)
	}
	if tn.net.Host("b1") != tn.hosts["b1"] || tn.net.HostAt(tn.hosts["b1"].Addr()) != tn.hosts["b1"] {
		t.Error("Host and HostAt do not find b1")
	}
}

// TestDataAndGossipSplit checks that marker-byte datagrams go to the data
// plane and the others to memberlist, each with the sender's address.
func TestDataAndGossipSplit(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	a, b := tn.eps["a1"], tn.eps["b1"]
	if err := a.SendDatagram(b.Addr(), datagram(7)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteToAddress([]byte{1, 2, 3}, memberlist.Address{Addr: b.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-b.Datagrams():
		if d.From != a.Addr() || d.Data[1] != 7 {
			t.Errorf("datagram from %v %v, want from %v", d.From, d.Data, a.Addr())
		}
		d.Release()
	default:
		t.Fatal("no datagram on a link without latency")
	}
	select {
	case p := <-b.PacketCh():
		if p.From.String() != a.Addr().String() || len(p.Buf) != 3 {
			t.Errorf("packet from %v %v", p.From, p.Buf)
		}
	default:
		t.Fatal("no gossip packet")
	}
	st := tn.net.Stats()
	if st.Gossip.Across.Datagrams != 1 || st.Unclassified.Across.Datagrams != 1 || st.Delivered != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestLatencyAndOrder checks a link's latency (a lower bound, which no
// scheduling can break) and that jitter does not reorder a link.
func TestLatencyAndOrder(t *testing.T) {
	tn := newTestNet(t, sim.Config{TimeScale: 2, Seed: testSeed(t, 1)})
	const lat = 5 * time.Millisecond
	if err := tn.net.SetLink("a", "b", sim.Link{Latency: lat, Jitter: 3 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	a, b := tn.eps["a1"], tn.eps["b1"]
	start := time.Now()
	const n = 50
	for i := range n {
		if err := a.SendDatagram(b.Addr(), datagram(byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for len(got) < n {
		select {
		case d := <-b.Datagrams():
			if len(got) == 0 {
				if waited := time.Since(start); waited < tn.net.Wall(lat) {
					t.Errorf("first datagram after %v, before the link's latency %v (x2)", waited, lat)
				}
			}
			got = append(got, d.Data[1])
			d.Release()
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d datagrams arrived", len(got), n)
		}
	}
	for i := range got {
		if got[i] != byte(i) {
			t.Fatalf("datagrams out of order: %v", got)
		}
	}
	if tn.net.Wall(time.Second) != 2*time.Second || tn.net.Sim(2*time.Second) != time.Second {
		t.Errorf("Wall/Sim do not scale by 2")
	}
}

// lossPattern sends n datagrams on a->b and a->c from two goroutines
// through lossy links and returns which arrived on each link.
func lossPattern(t *testing.T, seed uint64, n int) (ab, ac []byte) {
	tn := newTestNet(t, sim.Config{Seed: seed, Inter: sim.Link{Loss: 0.3}})
	a := tn.eps["a1"]
	var wg sync.WaitGroup
	for _, to := range []string{"b1", "c1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				_ = a.SendDatagram(tn.eps[to].Addr(), datagram(byte(i)))
			}
		}()
	}
	wg.Wait()
	for _, d := range drain(tn.eps["b1"]) {
		ab = append(ab, d[1])
	}
	for _, d := range drain(tn.eps["c1"]) {
		ac = append(ac, d[1])
	}
	return ab, ac
}

// TestLossIsSeededPerLink checks that each link loses the same datagrams
// in every run with one seed, whatever the interleaving of the senders,
// and other ones with another seed.
func TestLossIsSeededPerLink(t *testing.T) {
	seed := testSeed(t, 7)
	ab1, ac1 := lossPattern(t, seed, 200)
	ab2, ac2 := lossPattern(t, seed, 200)
	if !slices.Equal(ab1, ab2) || !slices.Equal(ac1, ac2) {
		t.Errorf("one seed, different losses:\n%v\n%v", ab1, ab2)
	}
	if len(ab1) < 100 || len(ab1) > 180 {
		t.Errorf("a->b delivered %d of 200 at 30%% loss", len(ab1))
	}
	ab3, _ := lossPattern(t, seed+1, 200)
	if slices.Equal(ab1, ab3) {
		t.Error("another seed lost the same datagrams")
	}
}

func TestDuplicateAndRules(t *testing.T) {
	tn := newTestNet(t, sim.Config{Seed: testSeed(t, 3), Inter: sim.Link{Duplicate: 1}})
	a, b := tn.eps["a1"], tn.eps["b1"]
	_ = a.SendDatagram(b.Addr(), datagram(1))
	if got := drain(b); len(got) != 2 {
		t.Errorf("duplication 1: %d copies, want 2", len(got))
	}
	rule := tn.net.Drop(1, sim.DataFrames())
	_ = a.SendDatagram(b.Addr(), datagram(2))
	_, _ = a.WriteToAddress([]byte{1}, memberlist.Address{Addr: b.Addr().String()})
	if got := drain(b); len(got) != 0 {
		t.Errorf("a rule dropping data frames let %d through", len(got))
	}
	if len(b.PacketCh()) != 2 { // gossip is duplicated too, not dropped
		t.Errorf("%d gossip packets, want 2", len(b.PacketCh()))
	}
	rule.Remove()
	_ = a.SendDatagram(b.Addr(), datagram(3))
	if got := drain(b); len(got) != 2 {
		t.Errorf("after removing the rule: %d datagrams, want 2", len(got))
	}
	if st := tn.net.Stats(); st.Drops.Rule != 1 {
		t.Errorf("drops %+v, want one by rule", st.Drops)
	}
}

func TestPartition(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	a, b := tn.eps["a1"], tn.eps["b1"]
	p := tn.net.PartitionZones([]string{"a"}, []string{"b"}, true)
	_ = a.SendDatagram(b.Addr(), datagram(1))
	_ = b.SendDatagram(a.Addr(), datagram(2))
	_ = a.SendDatagram(tn.eps["c1"].Addr(), datagram(3))
	if got := drain(b); len(got) != 0 {
		t.Error("a one-way cut let a->b through")
	}
	if got := drain(a); len(got) != 1 {
		t.Error("a one-way cut stopped b->a")
	}
	if got := drain(tn.eps["c1"]); len(got) != 1 {
		t.Error("a cut between a and b stopped a->c")
	}
	if _, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr().String()}, time.Second); err == nil {
		t.Error("a stream crossed the cut")
	}
	p.Heal()
	p.Heal()
	_ = a.SendDatagram(b.Addr(), datagram(4))
	if got := drain(b); len(got) != 1 {
		t.Error("healed cut still drops")
	}
	if st := tn.net.Stats(); st.Drops.Partition != 1 {
		t.Errorf("drops %+v, want one by partition", st.Drops)
	}
}

func TestCrashAndRestart(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	a, h := tn.eps["a1"], tn.hosts["b1"]
	old := tn.eps["b1"]
	h.Crash()
	if h.Up() {
		t.Error("crashed host is up")
	}
	_ = a.SendDatagram(h.Addr(), datagram(1))
	if got := drain(old); len(got) != 0 {
		t.Error("a crashed endpoint received")
	}
	if err := old.SendDatagram(a.Addr(), datagram(2)); err != nil {
		t.Errorf("send from a crashed endpoint: %v (it is dropped, not an error)", err)
	}
	if got := drain(a); len(got) != 0 {
		t.Error("a crashed endpoint sent")
	}
	ep, err := h.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Shutdown()
	_ = old.Shutdown() // the old node closing must not take the new one down
	_ = a.SendDatagram(h.Addr(), datagram(3))
	if got := drain(ep); len(got) != 1 {
		t.Error("restarted host does not receive")
	}
	if st := tn.net.Stats(); st.Drops.Down != 1 {
		t.Errorf("drops %+v, want one to a down host", st.Drops)
	}
	if err := old.SendDatagram(a.Addr(), datagram(4)); !errors.Is(err, sim.ErrClosed) {
		t.Errorf("send on a shut down endpoint: %v, want ErrClosed", err)
	}
}

func TestPauseAndResume(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	a, b, h := tn.eps["a1"], tn.eps["b1"], tn.hosts["b1"]
	h.Pause()
	_ = a.SendDatagram(b.Addr(), datagram(1))
	_ = b.SendDatagram(a.Addr(), datagram(2))
	if len(drain(b)) != 0 || len(drain(a)) != 0 {
		t.Fatal("a paused host read or sent")
	}
	h.Resume()
	if got := drain(b); len(got) != 1 {
		t.Errorf("resumed host got %d datagrams, want the 1 that waited", len(got))
	}
	if got := drain(a); len(got) != 1 {
		t.Errorf("resumed host's send arrived %d times, want 1", len(got))
	}
}

func TestBandwidthQueue(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	if err := tn.net.SetLink("a", "b", sim.Link{Bandwidth: 10_000, Queue: 3000}); err != nil {
		t.Fatal(err)
	}
	a, b := tn.eps["a1"], tn.eps["b1"]
	big := make([]byte, 1000)
	big[0] = wire.Marker
	for range 10 {
		_ = a.SendDatagram(b.Addr(), big)
	}
	st := tn.net.Stats()
	if st.Drops.Queue < 6 || st.Drops.Queue > 8 {
		t.Errorf("a 3000-byte queue dropped %d of ten 1000-byte datagrams sent at once, want 7", st.Drops.Queue)
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return len(b.Datagrams()) == int(10-st.Drops.Queue) },
		"the queued datagrams to arrive")
}

// TestClassifies checks that the network opens frames with the cluster's
// keys to count events, retransmissions and acknowledgements.
func TestClassifies(t *testing.T) {
	tn := newTestNet(t, sim.Config{})
	a := tn.eps["a1"]
	sealer := wire.NewSealer(tn.keyring, tn.label)
	seal := func(body []byte) []byte {
		out, err := sealer.Seal(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ev := wire.Events{Origin: "a1", Boot: 1, Zone: "a", Events: []wire.Event{{Seq: 1, Key: "k", ID: [16]byte{1}}, {Seq: 2, Key: "l", ID: [16]byte{2}}}}
	body, err := wire.AppendEvents(nil, &ev, false)
	if err != nil {
		t.Fatal(err)
	}
	frame := seal(body)
	_ = a.SendDatagramTo([]netip.AddrPort{tn.eps["b1"].Addr(), tn.eps["c1"].Addr()}, frame)
	_ = a.SendDatagram(tn.eps["b1"].Addr(), frame) // the same frame again: known by its header
	ev.Flags = wire.FlagRetransmit
	body, _ = wire.AppendEvents(nil, &ev, false)
	_ = a.SendDatagram(tn.eps["b1"].Addr(), seal(body))
	acks, err := wire.AppendAcks(nil, &wire.Acks{Origin: "a1", Boot: 1, Acks: []wire.Ack{{Node: "b1", Boot: 2, Seqs: []uint64{1}}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.SendDatagram(tn.eps["b1"].Addr(), seal(acks))
	st := tn.net.Stats()
	if st.Events.Across.Datagrams != 3 || st.Events.Across.Events != 6 {
		t.Errorf("events %+v, want 3 datagrams carrying 6 events", st.Events.Across)
	}
	if st.Retransmits.Across.Datagrams != 1 || st.Acks.Across.Datagrams != 1 || st.Unclassified.Total().Datagrams != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestStreams(t *testing.T) {
	tn := newTestNet(t, sim.Config{Inter: sim.Link{Latency: time.Millisecond}})
	a, b := tn.eps["a1"], tn.eps["b1"]
	c, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var s net.Conn
	select {
	case s = <-b.StreamCh():
	case <-time.After(5 * time.Second):
		t.Fatal("no stream accepted")
	}
	if s.RemoteAddr().(*net.TCPAddr).IP.String() != "10.1.0.1" {
		t.Errorf("accepted stream from %v", s.RemoteAddr())
	}
	if _, err := c.Write([]byte("push")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(s, buf, 4)
	if err != nil || string(buf[:n]) != "push" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past its deadline: %v", err)
	}
	_ = s.SetReadDeadline(time.Time{})
	_, _ = s.Write([]byte("pull"))
	_ = s.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "pull" {
		t.Errorf("read %q %v, want the answer then EOF", got, err)
	}
	_ = c.Close()

	// A stream across a new partition breaks.
	c2, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr().String()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s2 := <-b.StreamCh()
	defer s2.Close()
	p := tn.net.PartitionZones([]string{"a"}, nil, false)
	defer p.Heal()
	if _, err := c2.Read(buf); err == nil {
		t.Error("a stream across a partition still reads")
	}
	_ = c2.Close()
	tn.hosts["c1"].Crash()
	if _, err := b.DialAddressTimeout(memberlist.Address{Addr: tn.hosts["c1"].Addr().String()}, time.Second); err == nil {
		t.Error("dialled a crashed host")
	}
	if st := tn.net.Stats(); st.Streams != 2 || st.StreamBytes != 8 {
		t.Errorf("streams %d, bytes %d; want 2 and 8", st.Streams, st.StreamBytes)
	}
}

// TestEndpointIsTransport is the compile-time promise, checked where
// users will look.
func TestEndpointIsTransport(t *testing.T) {
	var _ membership.Transport = (*sim.Endpoint)(nil)
	var _ membership.MultiSender = (*sim.Endpoint)(nil)
	if err := (sim.Link{Loss: 2}).Validate(); err == nil {
		t.Error("loss 2 validated")
	}
	if _, err := sim.New(sim.Config{TimeScale: -1}); err == nil {
		t.Error("negative TimeScale accepted")
	}
}
