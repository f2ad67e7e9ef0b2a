package syncbus

// MemberState is what a node knows of another node's health.
type MemberState uint8

const (
	// MemberAlive nodes answer.
	MemberAlive MemberState = iota
	// MemberSuspect nodes missed probes but are not yet declared failed.
	// They still count as alive for acknowledgements.
	MemberSuspect
	// MemberLeft nodes announced a graceful leave.
	MemberLeft
	// MemberFailed nodes stopped answering without leaving.
	MemberFailed
)

// Alive reports whether the state counts as alive (alive or suspect).
func (s MemberState) Alive() bool { return s == MemberAlive || s == MemberSuspect }

// Member is one node of a cluster as a bus sees it.
type Member struct {
	Name   string
	Zone   string
	Region string
	// Addr is the node's address ("host:port" for the mesh; empty when the
	// transport has no addresses, as on a broker).
	Addr  string
	State MemberState
}
