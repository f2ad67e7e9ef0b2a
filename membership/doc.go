// Package membership tells a node which other nodes make up its cluster,
// where they run and whether they are healthy. It puts
// github.com/hashicorp/memberlist, which does the gossip and the failure
// detection, behind a small API, and it owns the network seam that the
// mesh's data plane shares with memberlist.
//
// # Place in the module
//
// membership imports memberlist, wire (for the frame marker byte and the
// keyring) and syncbus (for Member and MemberState). The mesh builds on it;
// the simulated network implements its Transport. It never imports either.
//
// # The transport seam
//
// Transport is memberlist's NodeAwareTransport (packets and streams) plus a
// channel of the data plane's datagrams and a way to send them: one address
// per node for gossip and data. An implementation gives a datagram whose
// first byte is wire.Marker to the data plane and every other one to
// memberlist, and never lets one of them block the other: a full channel
// drops and counts. NetTransport is the implementation on real sockets, one
// UDP and one TCP socket on one port.
//
// A transport that can send one datagram to several addresses at once also
// implements MultiSender; the data plane, which seals a frame once for all
// its receivers, looks for it with a type assertion and otherwise calls
// SendDatagram per receiver. On Linux NetTransport sends such a fanout
// with sendmmsg, up to 64 addresses per system call, and its reader takes
// up to NetConfig.ReadBatch datagrams per recvmmsg call off the socket;
// other systems send and read one datagram per call. Either way the
// datagrams, their order and the split between the two consumers are the
// same, and NetStats counts the system calls next to the datagrams.
//
// # Usage
//
// New starts a node and returns at once; it joins every one of
// Config.Seeds in the background, retrying until one answers, exchanges
// state with a seed again 2, 4, 8 and 16 probe intervals later (nodes that
// start together learn of each other from the seeds, even where gossip
// missed one), and afterwards rejoins the seeds and recently failed members
// every Config.RejoinInterval, so that a cluster split by a partition
// merges again by itself once the network heals. Contact asks for a state
// exchange with a node at once: the mesh calls it for a node that sends it
// frames but that it does not list. Snapshot returns an immutable view of the members (cheap: an
// atomic load), Events reports their changes, Leave announces a graceful
// departure and Close shuts everything down, leaving first if the node has
// not left. Every goroutine the package starts ends in Close (or, for a
// NetTransport used alone, in Shutdown).
//
// Each node announces its zone, region, a boot ID (random per New, so that
// a node restarted under the same name is told apart from its previous
// run) and the data-plane protocol version it speaks. A peer whose
// announcement cannot be decoded, or that speaks a version this node does
// not, is left out of the snapshot and counted (Stats.BadMetadata), never
// fatal.
//
// # Security
//
// memberlist seals its packets with AES-GCM under keys derived from the
// cluster keyring (wire.DeriveKey with the purpose "warp memberlist v1"),
// never under the raw cluster keys, and follows the keyring as keys are
// added, made primary and removed. Its packets carry random nonces and it
// keeps no replay window; the frames of the data plane are sealed by wire,
// which has both. A cluster label keeps clusters that share a network
// apart. memberlist logs each packet it rejects; those lines reach the
// configured logger through a rate limit, so that a flood of bad packets
// cannot flood the log.
//
// # Health
//
// A member is alive, suspect (it missed probes but is not yet declared
// failed; it still counts as alive), left or failed. memberlist v0.7 does
// not report suspicion, nor whether a departed node left or failed; this
// package reads both from memberlist's own node table, after checking its
// layout once. Should a memberlist upgrade change that layout, the node
// logs it and reports every departure as failed and no suspicion, and this
// package's tests fail, so that the upgrade is not taken unnoticed.
package membership
