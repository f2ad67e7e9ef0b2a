package bridge

import "github.com/warpmesh/warp/syncbus"

// Counter counts the acknowledgements of one awaiting publish against what
// it asked for. The core calls it under its own lock, from one goroutine at
// a time.
type Counter interface {
	// Ack records that node applied the event and reports whether that
	// counted (a node counts once, the publisher never).
	Ack(node string) bool
	// Decided reports whether the request is satisfied, or can no longer
	// be with the members alive now.
	Decided() bool
	// Update recounts against a new member list after the membership
	// changed.
	Update(members []syncbus.Member)
	// Outcome returns nil when the request is satisfied, filling report
	// when it is not nil, and otherwise the *syncbus.QuorumError with the
	// figures and cause (why waiting stopped, or nil).
	Outcome(cause error, report *syncbus.AckReport) error
}

// Quorum starts the Counter of an awaiting publish by local among members
// (local included): kind says whether required counts replicas or zones,
// zoneQuorum is the per-zone quorum (0 for none). When the alive members
// cannot satisfy the request it returns the fail-fast *syncbus.QuorumError
// instead, so the call returns at once without sending.
//
// Each bridge package supplies one built on package zones — the mesh's
// counting, so every bus counts alike. (Package bridge may not import zones:
// ARCHITECTURE.md draws the gateway on wire and syncbus only.)
type Quorum func(local string, members []syncbus.Member, kind syncbus.QuorumKind, required, zoneQuorum int) (Counter, error)
