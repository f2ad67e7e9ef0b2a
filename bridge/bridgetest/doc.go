// Package bridgetest holds the test harnesses every bridge package shares:
// the judge of FuzzReceive (ReceiveHarness), which holds a bus to the
// receiving core's contract for any message a broker could hand it; the
// steady load of TestRestartUnderLoad (Load, RestartUnderLoad), which
// checks across a broker restart that loss is never silent; and the loops
// of the benchmarks (Burst10k, EventualLatency, AwaitLatency, and Watchdog
// for the raw clients' twins), whose latency loops wait alike and cheaply. The bridges
// share their receiving core and their semantics, so each runs the same
// checks; its own tests keep only what is particular to its broker:
// starting and stopping the server, building the buses, handing a broker
// message to the bus.
//
// It imports syncbus, syncbus/bustest (for its Node), bridge (for Health),
// wire and internal/warptest, and no broker client: the bridges' tests
// import it, production code never does. bridge/gatewaytest, beside it, is
// the gateway scenario.
//
// A typical restart test, in a bridge whose broker keeps nothing for an
// absent subscriber:
//
//	func TestRestartUnderLoad(t *testing.T) {
//		warptest.LeakCheck(t) // first, so that it runs after the server's cleanup
//		srv := startServer(t)
//		buses := srv.cluster(t, []bustest.Node{{Name: "pub", Zone: "a"}, {Name: "r1", Zone: "b"}, {Name: "r2", Zone: "c"}})
//		bridgetest.RestartUnderLoad(t, bridgetest.Broker{Stop: srv.stop, Start: srv.start}, buses)
//	}
package bridgetest
