// Package bridge holds what the broker bridges share and the gateway that
// joins buses.
//
//   - The gateway (NewGateway) relays events between a local and a remote
//     bus — a region's mesh and a broker, or two regions' brokers —
//     honouring their Scope, without loops and without delivering any
//     event twice in a region, also with several gateways per region and
//     across a gateway's restart (see the rules in gateway.go's comment,
//     repeated in the README).
//   - Core is the broker-independent half of a bridge bus: the semantics
//     every Bus shares (ARCHITECTURE.md), the mesh's wire frames, sealed
//     with the keyring and batched with lz4, acknowledgements counted as
//     the mesh counts them, presence announcements for Members and fail
//     fast, flow control at the receiving end (a full subscription holds
//     the delivery of frames, which the broker client buffers meanwhile,
//     for StallTimeout at most), and resyncs whenever the broker may have
//     lost events. The
//     bridge packages bridge/nats, bridge/kafka and bridge/redis pair it
//     with a Transport for their client; a bridge for another pub/sub
//     broker would do the same.
//   - Config, Option and the With… functions are the settings every
//     bridge shares, with the mesh's names and defaults (NodeName, Zone,
//     Region, SecretKeys, Label, Logger, BatchInterval 2ms, AckTimeout 5s,
//     StallTimeout 1s, TimeScale, Recorder). The bridges repeat the values
//     rather than import the mesh.
//
// # Place in the module
//
// bridge imports wire and syncbus only (ARCHITECTURE.md). It may not import
// zones, so the acknowledgement counting of package zones reaches Core
// through Quorum, which each bridge package supplies. No broker client is
// imported here: each lives in its own bridge package, so importing the
// gateway never pulls in Kafka. bridge/gatewaytest is the gateway scenario
// every transport's tests run, and bridge/bridgetest holds the harnesses
// of their FuzzReceive and TestRestartUnderLoad.
//
// # Frames on a broker
//
// A bridge sends the mesh's frames (package wire): Events frames, each
// event numbered in its node's sequence, Acks and Presence. One broker
// message carries one sealed frame of up to wire.MaxDatagramSize bytes. A
// receiver follows each publisher's numbering: a number skipped means the
// broker lost messages (a failed send, a dropped message), and every
// subscription resyncs; a number seen twice (a replay) is dropped.
// Anything on the channel that does not open or decode is dropped and
// counted by reason, never delivered.
//
// # Goroutines
//
// A Core runs a sender (batching), an acknowledger and a presence loop;
// a Gateway runs one goroutine per direction. Close stops them all and
// waits for them.
package bridge
