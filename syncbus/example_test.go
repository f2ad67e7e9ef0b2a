package syncbus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// A lone in-memory bus delivers to its own subscribers.
func ExampleNewInMemoryBus() {
	bus := syncbus.NewInMemoryBus()
	defer bus.Close()
	ctx := context.Background()

	ch, err := bus.Subscribe(ctx, "user:42")
	if err != nil {
		panic(err)
	}
	if err := bus.Publish(ctx, "user:42"); err != nil {
		panic(err)
	}
	ev := <-ch
	fmt.Println(ev.Op, ev.Key, "from", ev.Origin)
	// Output: OpInvalidate user:42 from local
}

// Three nodes in three zones: a write waits until every zone has dropped
// its copy, and learns who applied it.
func ExampleInMemoryNetwork() {
	net := syncbus.NewInMemoryNetwork()
	var nodes []*syncbus.InMemoryBus
	for _, n := range []struct{ name, zone string }{{"api-1", "eu-a"}, {"api-2", "eu-b"}, {"api-3", "eu-c"}} {
		b, err := net.Join(n.name, n.zone, syncbus.WithNodeRegion("eu"))
		if err != nil {
			panic(err)
		}
		defer b.Close()
		nodes = append(nodes, b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var report syncbus.AckReport
	err := nodes[0].PublishAndAwaitTopology(ctx, "user:42", 3, syncbus.WithAckReport(&report))
	fmt.Println(err, report.Zones, report.Nodes)

	// Four zones cannot be had from three: the call fails at once.
	err = nodes[0].PublishAndAwaitTopology(ctx, "user:42", 4)
	var qe *syncbus.QuorumError
	if errors.As(err, &qe) {
		fmt.Println(errors.Is(err, syncbus.ErrQuorumNotSatisfied), qe.FailFast, qe.Available)
	}
	// Output:
	// <nil> [eu-a eu-b eu-c] [api-2 api-3]
	// true true 3
}

// The async publisher never blocks its caller; failures arrive on Errors.
func ExampleAsyncPublisher() {
	bus := syncbus.NewInMemoryBus()
	defer bus.Close()
	ch, _ := bus.Subscribe(context.Background(), "user:42")

	pub, err := syncbus.NewAsyncPublisher(bus, syncbus.AsyncConfig{PublishTimeout: time.Second})
	if err != nil {
		panic(err)
	}
	go func() {
		for err := range pub.Errors() { // closed by Close
			fmt.Println("publish failed:", err)
		}
	}()
	_ = pub.Publish("user:42") // returns at once
	fmt.Println((<-ch).Key)
	if err := pub.Close(); err != nil { // drains the queue
		panic(err)
	}
	fmt.Println(pub.Stats().Published)
	// Output:
	// user:42
	// 1
}

// A Dispatcher keeps only the newest event for a reader that is away.
func ExampleDispatcher() {
	d, err := syncbus.NewDispatcher(syncbus.DispatcherConfig{})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	ch, _ := d.Subscribe(context.Background(), "k")
	for _, origin := range []string{"n1", "n2", "n3"} {
		d.Deliver(syncbus.Event{Key: "k", Op: syncbus.OpInvalidate, Origin: origin})
	}
	fmt.Println((<-ch).Origin, d.Stats().Coalesced)
	// Output: n3 2
}
