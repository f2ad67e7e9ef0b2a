package mesh

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/syncbus"
)

// FanoutMode says how an event reaches the other nodes.
type FanoutMode uint8

const (
	// FanoutAuto picks FanoutDirect for clusters of up to
	// DefaultRelayThreshold nodes and FanoutRelay above.
	FanoutAuto FanoutMode = iota
	// FanoutDirect sends every event from the publisher straight to every
	// other node: the lowest latency, n-1 datagrams per event from one node.
	FanoutDirect
	// FanoutRelay sends every event straight to the other nodes of the
	// publisher's zone and to one relay in each other zone, which fans it
	// out in its zone: one datagram per remote zone crosses zones.
	FanoutRelay
)

// String returns "auto", "direct" or "relay".
func (m FanoutMode) String() string {
	switch m {
	case FanoutAuto:
		return "auto"
	case FanoutDirect:
		return "direct"
	case FanoutRelay:
		return "relay"
	}
	return "FanoutMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseFanoutMode parses "auto", "direct" or "relay".
func ParseFanoutMode(s string) (FanoutMode, error) {
	switch s {
	case "", "auto":
		return FanoutAuto, nil
	case "direct":
		return FanoutDirect, nil
	case "relay":
		return FanoutRelay, nil
	}
	return 0, fmt.Errorf("mesh: unknown fanout mode %q (want auto, direct or relay)", s)
}

// Defaults of MeshOptions.
const (
	DefaultPort           = 7946
	DefaultBindAddr       = "0.0.0.0"
	DefaultBatchInterval  = 2 * time.Millisecond
	DefaultBatchSize      = 256
	DefaultAckTimeout     = 5 * time.Second
	DefaultRepairBuffer   = 1 << 16
	DefaultPrefixBuffer   = syncbus.DefaultPrefixBuffer
	DefaultRelayThreshold = 12
)

// MeshOptions configures a MeshBus. The zero value of every field means its
// default; NewMeshBus rejects values that make no sense.
type MeshOptions struct {
	// NodeName is this node's unique name (default: the host name plus a
	// short random suffix).
	NodeName string
	// BindAddr is the address to listen on (default "0.0.0.0").
	BindAddr string
	// Port is the one port for gossip and data, UDP and TCP: 0 means
	// DefaultPort (7946), -1 lets the system choose (see Addr).
	Port int
	// AdvertiseAddr is the address other nodes reach this one at, "ip" or
	// "ip:port" (default: the bound address, or a private address of the
	// host when bound to all interfaces).
	AdvertiseAddr string
	// Peers are seeds to join, "host:port" of their Port. A host name that
	// resolves to several addresses joins them all. Unreachable seeds are
	// retried in the background.
	Peers []string
	// Zone and Region place this node in the topology.
	Zone   string
	Region string
	// Label keeps clusters apart on a shared network: frames and gossip of
	// another label are dropped.
	Label string

	// SecretKeys authenticate and encrypt every datagram: 16, 24 or 32
	// bytes each, the first one primary. Empty means unauthenticated, which
	// the bus logs once. Keys can be changed at run time (AddKey, UseKey,
	// RemoveKey).
	SecretKeys [][]byte

	// Profile is the failure-detection timing: "lan" (default), "local"
	// (one machine, tests) or "wan".
	Profile string
	// Heartbeat overrides the profile's probe interval.
	Heartbeat time.Duration

	// BatchInterval is the longest an event may wait to share a datagram
	// with others under load. An idle bus never waits. Default 2ms.
	BatchInterval time.Duration
	// BatchSize is the most events one datagram carries. Default 256.
	BatchSize int

	// Fanout selects direct or relay fanout (default FanoutAuto).
	Fanout FanoutMode
	// AckTimeout bounds PublishAndAwait and PublishAndAwaitTopology calls
	// whose ctx has no deadline. Default 5s.
	AckTimeout time.Duration

	// Transport carries gossip and data. Nil means real UDP and TCP sockets
	// on BindAddr:Port; the simulator provides another.
	Transport membership.Transport
	// Group and Interface enable multicast discovery of seeds on a local
	// network (optional; not implemented yet: a non-empty Group is an error).
	Group     string
	Interface string

	// Logger receives the bus's logs (default: discard).
	Logger *slog.Logger

	// PrefixBuffer is the buffer of each prefix subscription before it
	// overflows into a resync. Default syncbus.DefaultPrefixBuffer.
	PrefixBuffer int
	// RepairBuffer is how many recent events this node keeps to repair
	// other nodes' gaps. Default 65536.
	RepairBuffer int
	// RelayThreshold is the cluster size above which FanoutAuto uses
	// relays. Default DefaultRelayThreshold.
	RelayThreshold int

	// membershipTuning lets tests shorten membership timings.
	membershipTuning func(*membership.Config)
}

// validate fills in defaults and rejects nonsense, before anything starts.
func (o *MeshOptions) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.BindAddr == "" {
		o.BindAddr = DefaultBindAddr
	} else if _, err := netip.ParseAddr(o.BindAddr); err != nil {
		bad("BindAddr %q is not an IP address", o.BindAddr)
	}
	switch {
	case o.Port == 0:
		o.Port = DefaultPort
	case o.Port < -1 || o.Port > 65535:
		bad("Port %d out of range (0 = %d, -1 = system's choice)", o.Port, DefaultPort)
	}
	if o.AdvertiseAddr != "" {
		if _, _, err := splitAdvertise(o.AdvertiseAddr); err != nil {
			bad("AdvertiseAddr: %v", err)
		}
	}
	for _, p := range o.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			bad("Peers: %q is not host:port", p)
		}
	}
	for i, k := range o.SecretKeys {
		switch len(k) {
		case 16, 24, 32:
		default:
			bad("SecretKeys[%d] is %d bytes; want 16, 24 or 32", i, len(k))
		}
	}
	switch o.Profile {
	case "":
		o.Profile = "lan"
	case "lan", "local", "wan":
	default:
		bad("Profile %q unknown (want lan, local or wan)", o.Profile)
	}
	if o.Heartbeat < 0 {
		bad("Heartbeat %v is negative", o.Heartbeat)
	}
	switch {
	case o.BatchInterval == 0:
		o.BatchInterval = DefaultBatchInterval
	case o.BatchInterval < 0 || o.BatchInterval > time.Second:
		bad("BatchInterval %v out of range (0..1s)", o.BatchInterval)
	}
	switch {
	case o.BatchSize == 0:
		o.BatchSize = DefaultBatchSize
	case o.BatchSize < 0 || o.BatchSize > 4096:
		bad("BatchSize %d out of range (1..4096)", o.BatchSize)
	}
	if o.Fanout > FanoutRelay {
		bad("Fanout %v unknown", o.Fanout)
	}
	switch {
	case o.AckTimeout == 0:
		o.AckTimeout = DefaultAckTimeout
	case o.AckTimeout < 0:
		bad("AckTimeout %v is negative", o.AckTimeout)
	}
	if o.Group != "" || o.Interface != "" {
		bad("Group/Interface: multicast discovery is not supported yet; list Peers instead")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.PrefixBuffer == 0:
		o.PrefixBuffer = DefaultPrefixBuffer
	case o.PrefixBuffer < 0:
		bad("PrefixBuffer %d is negative", o.PrefixBuffer)
	}
	switch {
	case o.RepairBuffer == 0:
		o.RepairBuffer = DefaultRepairBuffer
	case o.RepairBuffer < 0 || o.RepairBuffer > 1<<24:
		bad("RepairBuffer %d out of range", o.RepairBuffer)
	}
	switch {
	case o.RelayThreshold == 0:
		o.RelayThreshold = DefaultRelayThreshold
	case o.RelayThreshold < 0:
		bad("RelayThreshold %d is negative", o.RelayThreshold)
	}
	if len(errs) > 0 {
		return fmt.Errorf("mesh: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

// splitAdvertise parses "ip" or "ip:port"; port is 0 when absent.
func splitAdvertise(s string) (netip.Addr, int, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), int(ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q is not ip or ip:port", s)
	}
	return a, 0, nil
}
