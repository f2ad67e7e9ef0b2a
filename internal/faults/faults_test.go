package faults_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/faults"
)

var (
	a = netip.MustParseAddrPort("10.0.0.1:7946")
	b = netip.MustParseAddrPort("10.0.0.2:7946")
	c = netip.MustParseAddrPort("10.0.1.1:7946")
)

// verdicts judges n events packets on each of the links a->b and a->c,
// the two links judged from concurrent goroutines.
func verdicts(seed uint64, n int) (ab, ac []bool) {
	r := faults.New(seed)
	r.Drop(0.3, faults.Data())
	var wg sync.WaitGroup
	for _, to := range []netip.AddrPort{b, c} {
		out := &ab
		if to == c {
			out = &ac
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				*out = append(*out, r.Judge(faults.Packet{From: a, To: to, Kind: faults.KindEvents}).Drop)
			}
		}()
	}
	wg.Wait()
	return ab, ac
}

// TestSeededPerLink: the same seed gives every link the same drops,
// however the goroutines of different links interleave; another seed
// gives others; the rate is about the one asked for.
func TestSeededPerLink(t *testing.T) {
	ab1, ac1 := verdicts(42, 2000)
	ab2, ac2 := verdicts(42, 2000)
	for i := range ab1 {
		if ab1[i] != ab2[i] || ac1[i] != ac2[i] {
			t.Fatalf("seed 42 decided packet %d differently in two runs", i)
		}
	}
	ab3, _ := verdicts(43, 2000)
	same, dropped := 0, 0
	for i := range ab1 {
		if ab1[i] == ab3[i] {
			same++
		}
		if ab1[i] {
			dropped++
		}
	}
	if same == len(ab1) {
		t.Error("seeds 42 and 43 dropped the same packets")
	}
	if dropped < 500 || dropped > 700 {
		t.Errorf("dropped %d of 2000 at rate 0.3", dropped)
	}
}

func TestMatchPartitionAndRemove(t *testing.T) {
	r := faults.New(1)
	events := faults.Packet{From: a, To: b, Kind: faults.KindEvents}
	gossip := faults.Packet{From: a, To: b, Kind: faults.KindGossip}
	h := r.Drop(1, faults.Match{Kinds: []faults.Kind{faults.KindEvents}, OnlyFirst: true})
	if !r.Judge(events).Drop || r.Judge(gossip).Drop {
		t.Fatal("a drop rule for first transmissions of events")
	}
	retransmit := events
	retransmit.Retransmit = true
	if r.Judge(retransmit).Drop {
		t.Error("OnlyFirst dropped a retransmission")
	}
	h.Remove()
	h.Remove()
	if r.Judge(events).Drop {
		t.Error("removed rule still drops")
	}
	p := r.Partition([]netip.AddrPort{a}, []netip.AddrPort{c}, true)
	if !r.Judge(faults.Packet{From: a, To: c, Kind: faults.KindGossip}).Drop {
		t.Error("one-way cut lets a reach c")
	}
	if r.Judge(faults.Packet{From: c, To: a}).Drop || r.Judge(events).Drop {
		t.Error("one-way cut drops c->a or a->b")
	}
	p.Remove()
	r.Partition([]netip.AddrPort{a}, []netip.AddrPort{c}, false)
	if !r.Judge(faults.Packet{From: c, To: a}).Drop {
		t.Error("a two-way cut lets c reach a")
	}
}

func TestDelayDuplicateReorderHook(t *testing.T) {
	r := faults.New(7)
	r.Delay(20*time.Millisecond, 5*time.Millisecond, faults.Match{To: []netip.AddrPort{c}})
	r.Duplicate(1, faults.Match{Kinds: []faults.Kind{faults.KindAcks}})
	r.Reorder(1, time.Millisecond, faults.Match{Kinds: []faults.Kind{faults.KindDigest}})
	seen := 0
	r.Hook(faults.Match{Kinds: []faults.Kind{faults.KindCredit}}, func(p faults.Packet) faults.Verdict {
		seen++
		return faults.Verdict{Drop: p.To == b}
	})
	v := r.Judge(faults.Packet{From: a, To: c, Kind: faults.KindEvents})
	if v.Delay < 20*time.Millisecond || v.Delay >= 25*time.Millisecond || v.Drop || v.Copies != 0 {
		t.Errorf("delayed link: %+v", v)
	}
	if v := r.Judge(faults.Packet{From: a, To: b, Kind: faults.KindAcks}); v.Copies != 1 {
		t.Errorf("duplicated acks: %+v", v)
	}
	if v := r.Judge(faults.Packet{From: a, To: b, Kind: faults.KindDigest}); v.Delay != time.Millisecond {
		t.Errorf("reordered digest: %+v", v)
	}
	if !r.Judge(faults.Packet{From: a, To: b, Kind: faults.KindCredit}).Drop || seen != 1 {
		t.Errorf("hook: seen %d", seen)
	}
}

// TestLen counts installed rules, as a transport's fast path reads them.
func TestLen(t *testing.T) {
	r := faults.New(1)
	if r.Len() != 0 {
		t.Fatalf("empty rules: Len %d", r.Len())
	}
	h1 := r.Drop(0.5, faults.Data())
	h2 := r.Partition([]netip.AddrPort{a}, []netip.AddrPort{b}, false)
	if r.Len() != 2 {
		t.Fatalf("two rules: Len %d", r.Len())
	}
	h1.Remove()
	h1.Remove()
	if r.Len() != 1 {
		t.Fatalf("after removing one twice: Len %d", r.Len())
	}
	h2.Remove()
	if r.Len() != 0 {
		t.Fatalf("after removing both: Len %d", r.Len())
	}
}
