package mesh_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// A mesh of three nodes in three availability zones, on one machine: an
// invalidation applied in every zone before the writer goes on.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := []byte("0123456789abcdef0123456789abcdef") // the same on every node

	var nodes []*mesh.MeshBus
	for i, zone := range []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"} {
		opts := mesh.MeshOptions{
			NodeName: fmt.Sprintf("node-%d", i+1), Zone: zone,
			BindAddr: "127.0.0.1", Port: -1, // a port chosen by the system
			Profile: "local", SecretKeys: [][]byte{key},
		}
		if i > 0 {
			opts.Peers = []string{nodes[0].Addr().String()}
		}
		node, err := mesh.NewMeshBus(opts)
		if err != nil {
			log.Fatal(err)
		}
		defer node.Close()
		nodes = append(nodes, node)
	}
	if err := nodes[0].WaitForMembers(ctx, 3); err != nil {
		log.Fatal(err)
	}

	var report syncbus.AckReport
	err := nodes[0].PublishAndAwaitTopology(ctx, "user:42", 3, syncbus.WithAckReport(&report))
	fmt.Println(report.Zones, err)
	// Output: [eu-west-1a eu-west-1b eu-west-1c] <nil>
}

// Caches drop their copy of a key when any node invalidates it; a resync
// means events may have been lost, so everything under the prefix goes.
func ExampleMeshBus_SubscribePrefix() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := mesh.NewMeshBus(mesh.MeshOptions{NodeName: "solo", BindAddr: "127.0.0.1", Port: -1, Profile: "local"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	events, err := node.SubscribePrefix(ctx, "user:")
	if err != nil {
		log.Fatal(err)
	}
	if err := node.Publish(ctx, "user:42"); err != nil {
		log.Fatal(err)
	}
	ev := <-events
	switch ev.Op {
	case syncbus.OpResync:
		fmt.Println("drop everything under", ev.Key)
	default:
		fmt.Println("drop", ev.Key, "invalidated by", ev.Origin)
	}
	// Output: drop user:42 invalidated by solo
}
