package syncbus_test

import (
	"context"
	"testing"

	"pgregory.net/rapid"

	"github.com/warpmesh/warp/syncbus"
)

// TestDispatcherProperties drives one exact-key and one prefix subscription
// with random deliveries, resyncs and reads, and checks:
//
//   - the exact subscription always holds the newest event (or resync) since
//     the last read, and nothing when there is none;
//   - the prefix subscription returns real events in delivery order; every
//     event it dropped is followed, in the reader's order, by a resync read
//     after the drop; it sends an overflow resync only when it dropped
//     something; the counters add up;
//   - HasRoom agrees with Room after every step.
func TestDispatcherProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		size := rapid.IntRange(1, 5).Draw(rt, "size")
		d, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{PrefixBuffer: size})
		if err != nil {
			rt.Fatal(err)
		}
		defer d.Close()
		exact, _ := d.Subscribe(context.Background(), "p/k")
		prefix, _ := d.SubscribePrefix(context.Background(), "p/")

		var (
			step      int
			seq       uint64
			deliverAt = map[uint64]int{} // seq -> step it was delivered
			held      *syncbus.Event     // model of the exact subscription
			realRead  []uint64           // prefix: seqs read, in order
			resyncAt  []int              // prefix: steps at which resyncs were read
			overflows int                // prefix: resyncs read with no origin
			resyncs   int                // Resync calls
		)
		readPrefix := func(ev syncbus.Event) {
			if ev.Op == syncbus.OpResync {
				if ev.Key != "p/" {
					rt.Fatalf("prefix resync with Key %q", ev.Key)
				}
				resyncAt = append(resyncAt, step)
				if ev.Origin == "" {
					overflows++
				}
				return
			}
			realRead = append(realRead, num(ev))
		}

		rt.Repeat(map[string]func(*rapid.T){
			"deliver": func(rt *rapid.T) {
				step++
				seq++
				ev := inv("p/k", seq)
				deliverAt[seq] = step
				d.Deliver(ev)
				held = &ev
			},
			"resync": func(rt *rapid.T) {
				step++
				resyncs++
				d.Resync("origin")
				if held == nil {
					held = &syncbus.Event{Key: "p/k", Op: syncbus.OpResync, Origin: "origin"}
				}
			},
			"readExact": func(rt *rapid.T) {
				step++
				select {
				case ev := <-exact:
					if held == nil {
						rt.Fatalf("exact: read %+v, model holds nothing", ev)
					}
					if ev.Op != held.Op || num(ev) != num(*held) {
						rt.Fatalf("exact: read %v/%d, model holds %v/%d", ev.Op, num(ev), held.Op, num(*held))
					}
					held = nil
				default:
					if held != nil {
						rt.Fatalf("exact: empty, model holds %v/%d", held.Op, num(*held))
					}
				}
			},
			"readPrefix": func(rt *rapid.T) {
				step++
				select {
				case ev := <-prefix:
					readPrefix(ev)
				default:
				}
			},
			"": func(rt *rapid.T) {
				if n := len(prefix); n > size+1 {
					rt.Fatalf("prefix holds %d events, capacity %d", n, size+1)
				}
				// HasRoom first: Room unmarks what it finds with room.
				if has, room := d.HasRoom(), d.Room(); has != (room > 0) {
					rt.Fatalf("HasRoom %v with Room %d", has, room)
				}
			},
		})

		// The reader comes back and reads everything.
		step++
		for {
			select {
			case ev := <-prefix:
				readPrefix(ev)
				continue
			default:
			}
			break
		}

		for i := 1; i < len(realRead); i++ {
			if realRead[i] <= realRead[i-1] {
				rt.Fatalf("prefix events out of order: %v", realRead)
			}
		}
		read := map[uint64]bool{}
		for _, n := range realRead {
			read[n] = true
		}
		dropped := 0
		for n := uint64(1); n <= seq; n++ {
			if read[n] {
				continue
			}
			dropped++
			covered := false
			for _, at := range resyncAt {
				if at > deliverAt[n] {
					covered = true
					break
				}
			}
			if !covered {
				rt.Fatalf("event %d (step %d) dropped with no resync read after it (resyncs read at %v)", n, deliverAt[n], resyncAt)
			}
		}
		if overflows > dropped {
			rt.Fatalf("%d overflow resyncs for %d dropped events", overflows, dropped)
		}
		st := d.Stats()
		if st.Dropped != uint64(dropped) {
			rt.Fatalf("Stats.Dropped %d, model %d", st.Dropped, dropped)
		}
		// Every delivery reached the exact subscription, and the prefix one
		// unless dropped.
		if want := seq + uint64(len(realRead)); st.Delivered != want {
			rt.Fatalf("Stats.Delivered %d, want %d", st.Delivered, want)
		}
		if st.Resyncs < uint64(len(resyncAt)) {
			rt.Fatalf("Stats.Resyncs %d, but %d resyncs were read from the prefix alone", st.Resyncs, len(resyncAt))
		}
	})
}
