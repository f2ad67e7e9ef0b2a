package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Example seals a batch of events, opens the datagram on another node and
// decodes it.
func Example() {
	kr, err := wire.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	sealer := wire.NewSealer(kr, "prod")
	opener := wire.NewOpener(kr, "prod")

	batch := &wire.Events{Origin: "node-a", Boot: 1, Zone: "eu-west-1a", Region: "eu-west-1", Events: []wire.Event{
		{Seq: 1, Key: "user:1:profile", Op: syncbus.OpInvalidate},
		{Seq: 2, Key: "user:2:profile", Op: syncbus.OpInvalidate, Flags: wire.EventAckWanted},
	}}
	body, err := wire.AppendEvents(nil, batch, true)
	if err != nil {
		panic(err)
	}
	datagram, err := sealer.Seal(nil, body)
	if err != nil {
		panic(err)
	}

	// On the receiving node.
	opened, hdr, err := opener.Open(nil, datagram)
	if err != nil {
		panic(err)
	}
	var got wire.Events
	if typ, _ := wire.PeekType(opened); typ == wire.FrameEvents {
		if err := wire.DecodeEvents(opened, &got); err != nil {
			panic(err)
		}
	}
	fmt.Println("sealed:", hdr.Sealed, "counter:", hdr.Counter)
	for _, ev := range got.Events {
		fmt.Println(got.Origin, ev.Seq, ev.Key, ev.Flags&wire.EventAckWanted != 0)
	}

	// The same datagram again is a replay.
	_, _, err = opener.Open(nil, datagram)
	fmt.Println(errors.Is(err, wire.ErrReplay), wire.Reason(err))
	// Output:
	// sealed: true counter: 1
	// node-a 1 user:1:profile false
	// node-a 2 user:2:profile true
	// true replay
}

// ExampleEventsBuilder batches events into datagram-sized frames as they
// come, the way the mesh fills one frame per destination.
func ExampleEventsBuilder() {
	header := &wire.Events{Origin: "node-a", Boot: 1}
	var b wire.EventsBuilder
	if err := b.Reset(header, 300); err != nil {
		panic(err)
	}
	var bodies [][]byte
	for i := range 20 {
		ev := &wire.Event{Seq: uint64(i + 1), Key: fmt.Sprintf("user:%06d:profile", i)}
		ok, err := b.Append(ev)
		if err != nil {
			panic(err) // the event can never be sent: report it
		}
		if !ok { // full: send this frame, start the next with ev
			bodies = append(bodies, b.Finish(nil))
			_ = b.Reset(header, 300)
			if _, err := b.Append(ev); err != nil {
				panic(err)
			}
		}
	}
	bodies = append(bodies, b.Finish(nil))

	total := 0
	for _, body := range bodies {
		var f wire.Events
		if err := wire.DecodeEvents(body, &f); err != nil {
			panic(err)
		}
		total += len(f.Events)
		if len(body)+wire.MaxOverhead > 300 {
			panic("over budget")
		}
	}
	fmt.Println(len(bodies), "frames,", total, "events")
	// Output: 4 frames, 20 events
}

// ExampleSplit packs a large batch into datagram-sized bodies in one call.
func ExampleSplit() {
	batch := &wire.Events{Origin: "node-a", Boot: 1}
	for i := range 100 {
		batch.Events = append(batch.Events, wire.Event{Seq: uint64(i + 1), Key: fmt.Sprintf("user:%06d:profile", i)})
	}
	bodies, err := wire.Split(batch, wire.DefaultDatagramBudget)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(bodies) > 1, len(bodies[0])+wire.MaxOverhead <= wire.DefaultDatagramBudget)
	// Output: true true
}

// ExampleReason shows the metric label of a dropped frame.
func ExampleReason() {
	other := wire.NewSealer(nil, "staging")
	d, _ := other.Seal(nil, []byte{1})
	_, _, err := wire.NewOpener(nil, "prod").Open(nil, d)
	fmt.Println(wire.Reason(err))
	// Output: label
}
