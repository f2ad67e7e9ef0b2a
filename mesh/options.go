package mesh

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/warpmesh/warp/membership"
	"github.com/warpmesh/warp/mesh/internal/protocol"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// FanoutMode says how an event reaches the other nodes.
type FanoutMode uint8

const (
	// FanoutAuto picks FanoutDirect for clusters of up to
	// MeshOptions.RelayThreshold nodes and FanoutRelay above.
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

// Defaults of MeshOptions, at TimeScale 1.
const (
	DefaultPort                = membership.DefaultPort
	DefaultBindAddr            = "0.0.0.0"
	DefaultBatchInterval       = 2 * time.Millisecond
	DefaultBatchSize           = 256
	DefaultAckTimeout          = 5 * time.Second
	DefaultRepairBuffer        = protocol.DefaultRepairBuffer
	DefaultPrefixBuffer        = syncbus.DefaultPrefixBuffer
	DefaultRelayThreshold      = protocol.DefaultRelayThreshold
	DefaultFlowWindow          = protocol.DefaultWindow
	DefaultBackpressureTimeout = 5 * time.Second
	DefaultStallTimeout        = time.Second
)

// MeshOptions configures a MeshBus. The zero value of every field means its
// default (DefaultMeshOptions returns them filled in); NewMeshBus rejects
// values that make no sense, with the same rules as package membership for
// the settings the two share.
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
	// Peers are seeds to join: "host:port" (a host name that resolves to
	// several addresses joins them all), a bare IP address or host name on
	// DefaultPort, "dns+host:port" (every A and AAAA record of host, looked
	// up again at every rejoin: a Kubernetes headless service) or
	// "dnssrv+_service._proto.name" (the hosts and ports of its SRV
	// records). Unreachable seeds are retried in the background, and seeds
	// are joined again whenever they are not members, which merges a
	// cluster split by a partition.
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
	// Heartbeat is the failure detector's period, memberlist's probe
	// interval (default: the profile's, 1s for lan and local, 5s for
	// wan): each node probes one peer per heartbeat, and a peer that
	// misses its probe is suspected, then declared failed when the
	// profile's suspicion time (3, 4 or 6 heartbeats for local, lan or
	// wan) has passed. So it sets how fast a dead node is found: in a
	// cluster of a few nodes a killed node is reported failed — and
	// awaiting calls that need it fail fast — about 5 (local), 6 (lan) or
	// 8 (wan) heartbeats after it died, and within 7, 8 or 10 heartbeats
	// plus one gossip interval (100, 200 or 500ms); the suspicion time
	// grows with the logarithm of the cluster's size (the README's
	// detection table). The probe timeout is the profile's (200ms, 500ms,
	// 3s) or half the heartbeat, whichever is shorter, so every value
	// works on every profile. The lower bound is 50ms: shorter values are
	// accepted but leave a busy host (a GC pause, CPU contention) too
	// little time to answer a probe, so live nodes get suspected. Each
	// node sends one probe per heartbeat.
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
	// Group turns on zero-configuration discovery by UDP multicast on the
	// local network: a multicast group, "ip" or "ip:port", for example
	// "239.0.0.1" (port membership.DefaultGroupPort, 7945). The node
	// announces itself there at start and every few seconds, and joins
	// the nodes it hears as it joins Peers; Peers and Group may be used
	// together. Announcements are sealed with SecretKeys and Label: a node
	// without the key is never joined and cannot make this one join it,
	// and another Label is ignored; without SecretKeys discovery is open
	// to anyone on the segment, which the node logs. The TTL is 1: one
	// network segment. Cloud VPCs usually drop multicast: list Peers
	// there (a "dns+" seed finds a Kubernetes service). Empty: none.
	Group string
	// Interface names the network interface multicast discovery sends and
	// listens on, for example "eth0". Empty: the interface of the
	// advertise address, or else the first one that is up,
	// multicast-capable and not a loopback. A named interface that does
	// not exist or cannot multicast is a constructor error that names it.
	// It needs Group.
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
	// DedupeWindow is how many IDs of events relayed by gateways (Relay)
	// the node remembers, so that one relayed by several gateways is
	// delivered once. Size it for the relayed rate times the gateways'
	// lag. Default syncbus.DefaultDedupeWindow.
	DedupeWindow int

	// TimeScale stretches every interval and timeout of the node alike —
	// memberlist's probes, gossip, push/pull, suspicion and TCP timeouts,
	// rejoining, and the mesh's retransmission, repair, digests, relay ack
	// hold, batching window, flow-control bounds and AckTimeout: 10 makes
	// each of them ten times longer. 0 means 1; negative is an error. It is
	// for simulations that run many nodes on few cores (CPU contention must
	// not look like failure) and for very slow links. Every node of a
	// cluster should use the same scale.
	TimeScale float64

	// FlowWindow is the most events this node lets one publisher send it
	// beyond what it has received; its credit is its subscriptions' free
	// room, shared among the publishers that are sending, up to this.
	// Default 16384.
	FlowWindow int
	// BackpressureTimeout bounds how long Publish, RevokeLease and Relay
	// wait when receivers fall behind and this node's send queue is full,
	// before they return an error matching syncbus.ErrBackpressure (a ctx
	// that ends first returns its own error). Default 5s.
	BackpressureTimeout time.Duration
	// StallTimeout is how long one receiver without flow-control credit
	// may hold this node's publishing back; after it (or at once when
	// membership suspects the receiver) this node goes on without it, and
	// the receiver catches up through a resync. Default 1s.
	StallTimeout time.Duration

	// Recorder receives latency measurements for a metrics system (default:
	// none).
	Recorder syncbus.Recorder
	// Clock is the bus's source of time (default: the system clock). Tests
	// replace it; memberlist always uses the system clock.
	Clock Clock

	// membershipTuning lets tests shorten membership timings.
	membershipTuning func(*membership.Config)
}

// DefaultMeshOptions returns the options with every default filled in, as
// NewMeshBus would use them (NodeName gets a fresh random suffix on each
// call).
func DefaultMeshOptions() MeshOptions {
	var o MeshOptions
	if err := o.validate(); err != nil {
		panic("mesh: the default options are invalid: " + err.Error())
	}
	return o
}

// validate fills in defaults and rejects nonsense, before anything starts.
// The settings membership shares are checked by membership's own
// validation, so both layers accept and refuse the same values.
func (o *MeshOptions) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.BindAddr == "" {
		o.BindAddr = DefaultBindAddr
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.AdvertiseAddr != "" {
		if _, _, err := splitAdvertise(o.AdvertiseAddr); err != nil {
			bad("AdvertiseAddr: %v", err)
		}
	}
	for i, k := range o.SecretKeys {
		switch len(k) {
		case 16, 24, 32:
		default:
			bad("SecretKeys[%d] is %d bytes; want 16, 24 or 32", i, len(k))
		}
	}
	if o.Profile == "" {
		o.Profile = membership.ProfileLAN
	}
	if o.Heartbeat < 0 {
		bad("Heartbeat %v is negative", o.Heartbeat)
	}
	if err := protocol.CheckTimeScale(o.TimeScale); err != nil {
		bad("%v", err)
	}
	durations := []struct {
		name     string
		v        *time.Duration
		def, max time.Duration
	}{
		{"BatchInterval", &o.BatchInterval, DefaultBatchInterval, time.Second},
		{"AckTimeout", &o.AckTimeout, DefaultAckTimeout, 0},
		{"BackpressureTimeout", &o.BackpressureTimeout, DefaultBackpressureTimeout, 0},
		{"StallTimeout", &o.StallTimeout, DefaultStallTimeout, 0},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = protocol.Scale(d.def, o.TimeScale)
		case *d.v < 0 || (d.max > 0 && *d.v > d.max):
			bad("%s %v out of range", d.name, *d.v)
		default:
			*d.v = protocol.Scale(*d.v, o.TimeScale)
		}
	}
	ints := []struct {
		name          string
		v             *int
		def, min, max int
	}{
		{"BatchSize", &o.BatchSize, DefaultBatchSize, 1, 4096},
		{"PrefixBuffer", &o.PrefixBuffer, DefaultPrefixBuffer, 1, syncbus.MaxPrefixBuffer},
		{"RepairBuffer", &o.RepairBuffer, DefaultRepairBuffer, 1, 1 << 24},
		{"RelayThreshold", &o.RelayThreshold, DefaultRelayThreshold, 1, 1 << 30},
		{"FlowWindow", &o.FlowWindow, DefaultFlowWindow, 64, 1 << 15},
		{"DedupeWindow", &o.DedupeWindow, syncbus.DefaultDedupeWindow, 1, 1 << 24},
	}
	for _, n := range ints {
		switch {
		case *n.v == 0:
			*n.v = n.def
		case *n.v < n.min || *n.v > n.max:
			bad("%s %d out of range (%d..%d)", n.name, *n.v, n.min, n.max)
		}
	}
	if o.Fanout > FanoutRelay {
		bad("Fanout %v unknown", o.Fanout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Recorder == nil {
		o.Recorder = syncbus.NopRecorder{}
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if len(errs) == 0 {
		mcfg := o.membershipConfig(nil)
		if err := mcfg.Validate(); err != nil {
			errs = append(errs, err)
		} else if o.NodeName == "" {
			o.NodeName = mcfg.Name // the default name, fixed from here on
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("mesh: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

// membershipConfig translates the options for membership: the one place
// their shared settings meet.
func (o *MeshOptions) membershipConfig(keyring *wire.Keyring) membership.Config {
	c := membership.Config{
		Name:          o.NodeName,
		BindAddr:      o.BindAddr,
		BindPort:      o.Port,
		Seeds:         o.Peers,
		Group:         o.Group,
		Interface:     o.Interface,
		Zone:          o.Zone,
		Region:        o.Region,
		Label:         o.Label,
		Profile:       o.Profile,
		ProbeInterval: o.Heartbeat,
		Transport:     o.Transport,
		Logger:        o.Logger,
		TimeScale:     o.TimeScale,
	}
	if keyring != nil {
		c.Keyring = keyring
	}
	if o.AdvertiseAddr != "" {
		if ip, port, err := splitAdvertise(o.AdvertiseAddr); err == nil {
			c.AdvertiseAddr, c.AdvertisePort = ip.String(), port
		}
	}
	if o.membershipTuning != nil {
		o.membershipTuning(&c)
	}
	return c
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
