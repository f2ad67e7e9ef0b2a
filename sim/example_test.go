package sim_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/warpmesh/warp/sim"
)

// The ready-made scenarios, as warp sim --list shows them.
func ExampleScenarios() {
	for _, s := range sim.Scenarios() {
		fmt.Println(s.Name, s.NodeCount())
	}
	// Output:
	// three-zones 15
	// loss 9
	// partition 9
	// relay-crash 12
	// rolling-restart 6
	// paused-node 9
	// large 1000
}

// A scenario of your own: two zones 20ms apart, a zone-acknowledged
// publish every 100ms, and zone b cut off for two seconds.
func ExampleRun() {
	sc := sim.Scenario{
		Name:  "two-zones",
		Seed:  1,
		Zones: []sim.ZoneSpec{{Name: "a", Nodes: 3}, {Name: "b", Nodes: 3}},
		Intra: sim.Link{Latency: 200 * time.Microsecond},
		Inter: sim.Link{Latency: 20 * time.Millisecond, Jitter: 2 * time.Millisecond},
		Publish: []sim.Publisher{
			{Rate: 10, Mode: sim.Zones, Need: 2, Zones: []string{"a"}},
		},
		Faults:   []sim.Fault{{Kind: sim.FaultPartition, Zones: []string{"b"}, At: 2 * time.Second, For: 2 * time.Second}},
		Duration: 6 * time.Second,
	}
	rep, err := sim.Run(context.Background(), sc, sim.RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = rep.WriteTable(os.Stdout)
}
