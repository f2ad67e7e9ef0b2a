// Package sim runs unchanged Warp Mesh nodes on a simulated network, in
// one process: hosts in zones, links with latency, jitter, loss,
// duplication, reordering and bandwidth, partitions, crashes, pauses and
// restarts. Users plan a zone layout with it before production; the
// module's own fault tests run on it, where a failure can be replayed.
//
// # Pieces
//
// A Network holds the hosts (10.Z.H.H:7946, Z the zone's number) and the
// links between zones. Each host's Endpoint implements
// membership.Transport and membership.MultiSender, so a mesh.MeshBus runs
// on it through MeshOptions.Transport, gossip and data alike. The network
// tells memberlist's gossip from the data plane's frames by the frame
// marker byte and opens the data plane's frames with the cluster's keys to
// tell events from acknowledgements, repairs, digests and credit: it
// counts every datagram itself (Stats), whatever the buses claim.
//
// A Cluster starts real MeshBuses on a Network and brings them to the
// point where every node sees every other one. A Scenario describes a
// run — zones, nodes, links, publishers, faults over time — and Run
// executes it on a Cluster and returns a Report (a table, or JSON).
// Scenarios lists the ready-made ones; cmd/warp's "warp sim" runs them.
//
// # Time
//
// memberlist reads the wall clock and starts its own timers, so the
// simulation runs in real time, stretched: every node runs with the same
// TimeScale (MeshOptions.TimeScale, which reaches memberlist through
// membership.Config.TimeScale) and every simulated latency is stretched by
// the same factor. A thousand nodes on two cores then have the CPU time
// they need between two protocol timeouts, and contention is not mistaken
// for failure. Every figure is reported in simulated time: wall-clock time
// divided by the scale. AutoScale picks the scale from the cluster's size
// when a Scenario leaves it at zero. The network never sleeps to
// synchronise: it delivers each datagram from a heap ordered by arrival
// time, from one goroutine.
//
// # What one seed reproduces
//
// One seed (Config.Seed, Scenario.Seed) fixes every random choice the
// simulation makes: which datagrams each link loses, duplicates or
// reorders and by how much it jitters them, which datagrams each fault
// rule drops, the cluster's key, which node publishes each event and when
// faults happen. Each link (sender, receiver) draws from its own random
// stream, derived from the seed and the two addresses with FNV-1a, so
// goroutines sending on other links cannot change what a link does: the
// n-th datagram sent on a link gets the same fate in every run.
//
// What it does not fix is the scheduling of goroutines, and with it the
// order and timing in which the nodes send: which datagram is the n-th on
// a link, when memberlist probes whom (it has its own random choices), the
// mesh's random relay choices, the nodes' boot IDs. Two runs with one seed
// therefore agree on the network's behaviour, not datagram for datagram
// on the nodes' — a run that failed is replayed with the same seed, and
// usually (not always) fails the same way. Tests print their seed and
// accept -sim.seed to replay one.
//
// # Faults
//
// Links change at run time (SetLink); fault rules (Drop, Delay, Duplicate,
// Reorder, Hook, from the test kit's package faults) apply on top of the
// links, by kind of frame; Partition cuts a set of hosts from another,
// one way or both, and breaks the streams across the cut. A Host can
// Crash (its endpoint vanishes: nothing in or out, streams broken), Pause
// and Resume (SIGSTOP: it neither reads nor sends, and what waits for it
// is delivered when it resumes), and a restarted node listens again on the
// same host with a new incarnation.
//
// # Place in the module
//
// sim imports mesh and membership (and wire, syncbus and the internal
// fault rules); neither imports sim. It starts no broker.
package sim
