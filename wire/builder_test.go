package wire_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/warpmesh/warp/wire"
)

// decodeAll seals each body (as the mesh would), checks the datagram fits
// the budget, and decodes the events back in order.
func decodeAll(t *testing.T, bodies [][]byte, budget int) []wire.Event {
	t.Helper()
	kr := keyring(t, key(32, 5))
	s := wire.NewSealer(kr, "l")
	o := wire.NewOpener(kr, "l")
	var out []wire.Event
	var f wire.Events
	for i, body := range bodies {
		d, err := s.Seal(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) > budget {
			t.Fatalf("body %d seals to %d bytes, budget %d", i, len(d), budget)
		}
		opened, _, err := o.Open(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.DecodeEvents(opened, &f); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		out = append(out, f.Events...)
	}
	return out
}

func TestSplit(t *testing.T) {
	f := sampleEvents(1024)
	f.Events[100].VectorClock = map[string]uint64{"a": 1, "b": 2}
	f.Events[200].Key = strings.Repeat("long-key/", 40)
	for _, budget := range []int{wire.DefaultDatagramBudget, 512, 9000, wire.MaxDatagramSize} {
		bodies, err := wire.Split(f, budget)
		if err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		got := decodeAll(t, bodies, budget)
		if !reflect.DeepEqual(normEvents(&wire.Events{Events: got}).Events, normEvents(f).Events) {
			t.Fatalf("budget %d: %d events came back, want the %d sent in order", budget, len(got), len(f.Events))
		}
		if budget == wire.DefaultDatagramBudget && len(bodies) < 20 {
			t.Fatalf("1024 events in %d datagrams of 1400 bytes: budget not applied", len(bodies))
		}
	}
}

func TestSplitOversizeEvent(t *testing.T) {
	f := sampleEvents(10)
	f.Events[4].Key = "huge:" + strings.Repeat("k", wire.MaxKeyLen-5)
	_, err := wire.Split(f, wire.DefaultDatagramBudget)
	if !errors.Is(err, wire.ErrTooLarge) || !strings.Contains(err.Error(), "huge:kkk") {
		t.Fatalf("oversize event: %v, want ErrTooLarge naming the key", err)
	}
	// With a budget that holds it, the same batch splits fine.
	if _, err := wire.Split(f, 4096); err != nil {
		t.Fatalf("larger budget: %v", err)
	}
	// An invalid event is an error too, never a silent drop.
	f.Events[4].Key = ""
	if _, err := wire.Split(f, 4096); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("invalid event: %v", err)
	}
}

func TestSplitEmpty(t *testing.T) {
	bodies, err := wire.Split(&wire.Events{Origin: "o"}, 0)
	if err != nil || len(bodies) != 1 {
		t.Fatalf("empty batch: %d bodies, %v", len(bodies), err)
	}
	if _, err := wire.Split(&wire.Events{}, 0); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("no origin: %v", err)
	}
}

func TestBuilder(t *testing.T) {
	var b wire.EventsBuilder
	if ok, err := b.Append(&wire.Event{Key: "k"}); ok || !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("append before Reset: %v %v", ok, err)
	}
	f := sampleEvents(200)
	if err := b.Reset(f, 600); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; n < len(f.Events); n++ {
		before := b.Size()
		ok, err := b.Append(&f.Events[n])
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if b.Size() != before || b.Len() != n {
				t.Fatalf("refused append changed the builder: size %d→%d, len %d", before, b.Size(), b.Len())
			}
			break
		}
	}
	if n == 0 || n == len(f.Events) {
		t.Fatalf("%d events fit in 600 bytes", n)
	}
	if b.Size()+wire.MaxOverhead > 600 {
		t.Fatalf("builder holds %d bytes for a 600-byte budget", b.Size())
	}
	body := b.Finish([]byte("p"))[1:]
	got := decodeAll(t, [][]byte{body}, 600)
	if !reflect.DeepEqual(got, f.Events[:n]) {
		t.Fatalf("finished frame holds other events")
	}
	if len(body) >= b.Size() {
		t.Fatalf("Finish did not compress a %d-byte batch (got %d)", b.Size(), len(body))
	}
	// Reset with an invalid header refuses events until a good Reset.
	if err := b.Reset(&wire.Events{}, 0); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("Reset without origin: %v", err)
	}
	if ok, err := b.Append(&f.Events[0]); ok || err == nil {
		t.Fatalf("append after failed Reset: %v %v", ok, err)
	}
	// A budget smaller than the envelope fits nothing.
	if err := b.Reset(f, wire.MaxOverhead); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Append(&f.Events[0]); ok || !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("tiny budget: %v %v", ok, err)
	}
}

func TestEventCountLimit(t *testing.T) {
	// A compressed body can hold the largest count of small events...
	f := &wire.Events{Origin: "o", Events: make([]wire.Event, wire.MaxEventsPerFrame)}
	for i := range f.Events {
		f.Events[i] = wire.Event{Seq: uint64(i), Key: "k"}
	}
	body, err := wire.AppendEvents(nil, f, true)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Events
	if err := wire.DecodeEvents(body, &got); err != nil || len(got.Events) != wire.MaxEventsPerFrame {
		t.Fatalf("largest frame: %d events, %v", len(got.Events), err)
	}
	// ...and a decoder refuses one more, even though its bytes are all there.
	evs := make([]any, wire.MaxEventsPerFrame+1)
	for i := range evs {
		evs[i] = []any{1, make([]byte, 16), "k", 0, 0, 0, 0}
	}
	over := append([]byte{byte(wire.FrameEvents)}, libEncode(t, []any{"o", 0, "", "", 0, evs})...)
	if err := wire.DecodeEvents(over, &got); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("one event over the limit: %v, want ErrTooLarge", err)
	}
}
