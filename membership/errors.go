package membership

import "errors"

// Errors of the package. Methods of a closed Membership or a shut down
// NetTransport return syncbus.ErrClosed.
var (
	// ErrConfig is matched by every error New and NewNetTransport return for
	// a setting they reject; the message names the setting.
	ErrConfig = errors.New("membership: invalid config")
	// ErrMetaTooLarge is returned by New when the node's metadata (zone,
	// region and the fixed fields) does not fit memberlist.MetaMaxSize.
	ErrMetaTooLarge = errors.New("membership: node metadata too large")
	// ErrMetaMalformed is matched by every failure to decode a peer's
	// metadata that is not ErrMetaVersion.
	ErrMetaMalformed = errors.New("membership: malformed node metadata")
	// ErrMetaVersion is returned for metadata of a peer that speaks a
	// protocol version this node does not.
	ErrMetaVersion = errors.New("membership: unsupported protocol version")
	// ErrLeaveTimeout is returned by Leave when the leave announcement was
	// not fully gossiped within the timeout. The node has left all the same:
	// peers that missed the announcement will declare it failed instead.
	ErrLeaveTimeout = errors.New("membership: leave timed out")
)
