// Package bustest is the conformance suite every syncbus.Bus runs: the
// in-memory bus, the mesh on UDP and on the simulator, and the NATS, Kafka
// and Redis bridges. It checks the semantics the package documentation of
// syncbus states, the same way on every transport.
//
// It imports syncbus and goleak; production code never imports it.
//
// # Usage
//
// A transport's test supplies a Factory that builds a cluster of connected
// nodes with the names, zones and regions asked for, and declares what the
// bus supports:
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, newCluster, bustest.Features{
//			Quorum: true, ZoneAcks: true, ZoneQuorum: true,
//			Prefix: true, Relay: true, Members: true,
//			PrefixBuffer: 32, // what newCluster configured
//		})
//	}
//
// The factory registers the buses' Close with t.Cleanup and, where it can,
// offers Cluster.Mute to make one node stop acknowledging, for the cases
// that reach an awaiting call's deadline. Cases that need a capability the
// bus lacks are skipped, saying why.
//
// # What the suite assumes
//
// The suite never sleeps: it waits for events and conditions, each wait
// bounded by Features.Timeout, so it runs as well over real sockets and
// brokers as in memory. It does not assume any order between events of
// different publishers. To show that an event was not delivered it uses a
// witness: a node hands each event to all its matching subscriptions
// together, so once one subscription of a node received an event, another
// subscription of that node that should not have it must be empty. To
// order a sequence of events on every node it awaits each one from all
// other nodes (acknowledgements follow delivery), and for the publisher's
// own subscriptions it waits on its Metrics counters.
//
// The typical cluster has five nodes n1..n5 in zones a, a, b, b, c, all in
// region "eu"; n1 publishes, sharing its zone with n2.
package bustest
