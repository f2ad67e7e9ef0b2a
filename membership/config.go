package membership

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"

	"github.com/warpmesh/warp/wire"
)

// Profiles name memberlist's timing presets.
const (
	// ProfileLAN suits one data centre (memberlist.DefaultLANConfig).
	ProfileLAN = "lan"
	// ProfileLocal suits one host or a very fast network, such as tests
	// (memberlist.DefaultLocalConfig).
	ProfileLocal = "local"
	// ProfileWAN suits nodes spread over regions (memberlist.DefaultWANConfig).
	ProfileWAN = "wan"
)

// Defaults of the settings memberlist does not have.
const (
	// DefaultKeepDown is how long departed members stay in snapshots.
	DefaultKeepDown = 5 * time.Minute
	// DefaultRejoinTimeout is how long a failed member's address is
	// rejoined.
	DefaultRejoinTimeout = 6 * time.Hour
	// DefaultLeaveTimeout bounds the graceful leave of Close.
	DefaultLeaveTimeout = 3 * time.Second
	// DefaultEventBuffer is the capacity of the Events channel.
	DefaultEventBuffer = 256
	// DefaultLogRate and DefaultLogBurst bound the log: lines per second,
	// and lines at once.
	DefaultLogRate  = 10
	DefaultLogBurst = 20

	defaultReclaimIntervals = 5    // DeadNodeReclaimTime, in probe intervals
	maxRejoinTargets        = 16   // addresses joined per rejoin round
	maxRejoinMemory         = 1024 // failed members remembered for rejoining
)

// Config configures a Membership. The zero value of every field means its
// default; DefaultConfig returns them filled in.
type Config struct {
	// Name is the node's unique name in the cluster. Default: the host
	// name followed by a short random suffix.
	Name string

	// BindAddr is the IP address to listen on; default "0.0.0.0".
	BindAddr string
	// BindPort is the port for gossip and data, UDP and TCP alike: 0 means
	// DefaultPort (7946), -1 lets the system choose.
	BindPort int
	// AdvertiseAddr is the IP address peers are told to use; default: the
	// bound address, or a private address of this host when bound to
	// 0.0.0.0.
	AdvertiseAddr string
	// AdvertisePort is the port peers are told to use; default: the bound
	// port.
	AdvertisePort int

	// Seeds are the addresses ("host:port", or "host" for DefaultPort) of
	// nodes to join. A host name that resolves to several addresses (a
	// Kubernetes headless service) joins all of them. Joining happens in
	// the background and is retried; seeds are joined again whenever they
	// are not members, which merges a cluster split by a partition.
	Seeds []string

	// Group turns on zero-configuration discovery by UDP multicast: "ip"
	// or "ip:port" of a multicast group, for example "239.0.0.1" (port
	// DefaultGroupPort). The node announces its name, advertised address
	// and zone on the group at start and then every
	// DefaultAnnounceInterval (stretched by TimeScale), and joins the
	// nodes it hears exactly as it joins Seeds; Seeds and Group may be
	// used together. Announcements are sealed with Keyring and Label like
	// every frame: a node without the key is never joined and cannot make
	// this one join it, another label is ignored, and a cluster without
	// keys logs that discovery is open to anyone on the segment. Multicast
	// reaches one network segment (see MulticastTTL); cloud VPCs usually
	// drop it, and there Seeds ("dns+" and "dnssrv+" ones included) are
	// the way. Discovery has sockets of its own, whatever the Transport.
	// Empty: no multicast. DiscoveryStats reports what it does.
	Group string
	// Interface names the network interface announcements are sent and
	// heard on (for example "eth0"). Empty: the interface of the advertise
	// address, or else the first one that is up, multicast-capable and not
	// a loopback. A named interface that does not exist or cannot
	// multicast is an error that names it. It needs Group.
	Interface string
	// MulticastTTL is how many hops an announcement may travel: 0 means 1,
	// the local network segment, which does not cross a router.
	MulticastTTL int

	// Zone and Region say where this node runs (each at most MaxNameLen
	// bytes).
	Zone   string
	Region string

	// Keyring holds the cluster keys. memberlist seals its packets with
	// keys derived from them and follows their rotation. Nil or empty: no
	// gossip encryption. A keyring that is empty at New may gain keys
	// later, which turns encryption on from then.
	Keyring *wire.Keyring
	// Label separates clusters that share a network: memberlist drops
	// packets and streams of another label. At most 255 bytes.
	Label string

	// Profile picks memberlist's timings: ProfileLAN (default),
	// ProfileLocal or ProfileWAN. The fields below override single
	// timings of the profile; zero keeps the profile's.
	Profile string
	// ProbeInterval is the failure detector's period (the mesh's
	// "heartbeat"). Setting it without ProbeTimeout makes the timeout the
	// profile's or half the interval, whichever is shorter, so that any
	// interval works on any profile.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for its ack; it must be
	// shorter than ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a node stays suspect before it is
	// declared failed.
	SuspicionMult int
	// GossipInterval is the period of gossip rounds.
	GossipInterval time.Duration
	// GossipToTheDeadTime is how long memberlist keeps gossiping to, and
	// remembering, a failed node; after it only rejoining brings it back.
	GossipToTheDeadTime time.Duration
	// PushPullInterval is the period of full state exchanges.
	PushPullInterval time.Duration
	// TCPTimeout bounds memberlist's stream operations.
	TCPTimeout time.Duration
	// GossipCompression compresses memberlist's packets and state
	// exchanges (LZW). Off by default: while 200 nodes joined on 2 cores
	// it took 41% of the CPU, and 23% of an idle cluster's, to shrink
	// packets that fit a datagram anyway. Nodes with and without it
	// understand each other.
	GossipCompression bool
	// DeadNodeReclaimTime is how long after a node was declared failed
	// another address may take over its name (a node restarted elsewhere).
	// Default: five probe intervals. Negative: never.
	DeadNodeReclaimTime time.Duration

	// RejoinInterval is the period at which the node joins again the seeds
	// and the recently failed members that are not alive, so that a
	// cluster split by a long partition merges once the network heals.
	// Default: the profile's push/pull interval. Negative: never (the
	// initial join is still retried).
	RejoinInterval time.Duration
	// RejoinTimeout is how long a failed member's address is tried by
	// rejoining; default 6 h.
	RejoinTimeout time.Duration
	// KeepDown is how long left and failed members stay in snapshots;
	// default 5 min.
	KeepDown time.Duration
	// LeaveTimeout bounds the graceful leave that Close performs; default
	// 3 s.
	LeaveTimeout time.Duration

	// TimeScale stretches every interval and timeout above alike, and
	// memberlist's own (probes, gossip, push/pull, suspicion, TCP, queue
	// checks), after the profile's defaults and the overrides are applied:
	// 10 makes each of them ten times longer. 0 means 1; negative is an
	// error. It is for simulations that run many nodes on few cores — CPU
	// contention must not look like failure — and for very slow links.
	// Every node of a cluster should use the same scale.
	TimeScale float64

	// Transport carries gossip and data. Nil: a NetTransport bound to
	// BindAddr and BindPort. The Membership owns it from New on and shuts
	// it down on Close, or in New when New fails.
	Transport Transport

	// EventBuffer is the capacity of the Events channel; events that do
	// not fit are dropped and counted. Default 256.
	EventBuffer int

	// Logger receives the node's messages and memberlist's; nil discards
	// them. LogRate (lines per second, default 10) and LogBurst (default
	// 20) bound how fast they are written; what exceeds is counted and
	// announced.
	Logger   *slog.Logger
	LogRate  float64
	LogBurst int

	// scaledBy is the TimeScale the durations were stretched by when the
	// config was last validated (0: never).
	scaledBy float64

	// metaOverride replaces the node's encoded metadata; tests use it to
	// play a peer whose metadata this version cannot read.
	metaOverride []byte
	// lookup replaces the system resolver for seed host names in tests.
	lookup lookupFunc
}

// DefaultConfig returns the configuration with every default filled in, as
// New would use it. Name gets a fresh random suffix on each call.
func DefaultConfig() Config {
	var c Config
	if err := c.validate(); err != nil {
		panic("membership: the default config is invalid: " + err.Error())
	}
	c.Transport = nil
	return c
}

// Validate fills in the defaults of c and reports, as an error matching
// ErrConfig, the first setting that cannot work. New calls it; a layer that
// builds a Config (the mesh) calls it to check its own options the same
// way, so that both accept and refuse the same values. Validating twice is
// harmless: TimeScale stretches the durations once.
func (c *Config) Validate() error { return c.validate() }

// profileConfig returns memberlist's preset for a profile.
func profileConfig(profile string) (*memberlist.Config, error) {
	switch profile {
	case ProfileLAN:
		return memberlist.DefaultLANConfig(), nil
	case ProfileLocal:
		return memberlist.DefaultLocalConfig(), nil
	case ProfileWAN:
		return memberlist.DefaultWANConfig(), nil
	}
	return nil, fmt.Errorf("%w: Profile %q: want %q, %q or %q", ErrConfig, profile, ProfileLAN, ProfileLocal, ProfileWAN)
}

// validate fills in defaults and rejects settings that cannot work. It
// starts nothing, so New can call it before anything needs undoing.
func (c *Config) validate() error {
	if c.Profile == "" {
		c.Profile = ProfileLAN
	}
	base, err := profileConfig(c.Profile)
	if err != nil {
		return err
	}
	if c.Name == "" {
		c.Name = defaultName()
	}
	if err := checkName("Name", c.Name); err != nil {
		return err
	}
	if err := checkName("Zone", c.Zone); err != nil {
		return err
	}
	if err := checkName("Region", c.Region); err != nil {
		return err
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		return fmt.Errorf("%w: Label is %d bytes, more than %d", ErrConfig, len(c.Label), memberlist.LabelMaxSize)
	}

	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if net.ParseIP(c.BindAddr) == nil {
		return fmt.Errorf("%w: BindAddr %q is not an IP address", ErrConfig, c.BindAddr)
	}
	switch {
	case c.BindPort == 0:
		c.BindPort = DefaultPort
	case c.BindPort < -1 || c.BindPort > 65535:
		return fmt.Errorf("%w: BindPort %d out of range", ErrConfig, c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return fmt.Errorf("%w: AdvertiseAddr %q is not an IP address", ErrConfig, c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return fmt.Errorf("%w: AdvertisePort %d out of range", ErrConfig, c.AdvertisePort)
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s); err != nil {
			return err
		}
	}
	if err := c.validateMulticast(); err != nil {
		return err
	}

	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ProbeInterval", &c.ProbeInterval, base.ProbeInterval},
		{"ProbeTimeout", &c.ProbeTimeout, base.ProbeTimeout},
		{"GossipInterval", &c.GossipInterval, base.GossipInterval},
		{"GossipToTheDeadTime", &c.GossipToTheDeadTime, base.GossipToTheDeadTime},
		{"PushPullInterval", &c.PushPullInterval, base.PushPullInterval},
		{"TCPTimeout", &c.TCPTimeout, base.TCPTimeout},
		{"RejoinTimeout", &c.RejoinTimeout, DefaultRejoinTimeout},
		{"KeepDown", &c.KeepDown, DefaultKeepDown},
		{"LeaveTimeout", &c.LeaveTimeout, DefaultLeaveTimeout},
	}
	if c.ProbeTimeout == 0 && c.ProbeInterval != 0 {
		c.ProbeTimeout = min(base.ProbeTimeout, c.ProbeInterval/2)
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return fmt.Errorf("%w: %s %v is negative", ErrConfig, d.name, *d.v)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("%w: ProbeTimeout %v must be shorter than ProbeInterval %v", ErrConfig, c.ProbeTimeout, c.ProbeInterval)
	}
	if c.TimeScale < 0 || math.IsNaN(c.TimeScale) || math.IsInf(c.TimeScale, 0) {
		return fmt.Errorf("%w: TimeScale %v must be a finite number >= 0 (0 means 1)", ErrConfig, c.TimeScale)
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	// A config validated before (DefaultConfig's, or one a layer above
	// checked) holds durations stretched already: stretch by what is new.
	if c.scaledBy == 0 {
		c.scaledBy = 1
	}
	if f := c.TimeScale / c.scaledBy; f != 1 {
		for _, d := range durations {
			*d.v = scale(*d.v, f)
		}
		c.DeadNodeReclaimTime = scale(c.DeadNodeReclaimTime, f)
		c.RejoinInterval = scale(c.RejoinInterval, f)
	}
	c.scaledBy = c.TimeScale
	if c.DeadNodeReclaimTime == 0 {
		c.DeadNodeReclaimTime = defaultReclaimIntervals * c.ProbeInterval
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = c.PushPullInterval
	}
	switch {
	case c.SuspicionMult == 0:
		c.SuspicionMult = base.SuspicionMult
	case c.SuspicionMult < 0:
		return fmt.Errorf("%w: SuspicionMult %d is negative", ErrConfig, c.SuspicionMult)
	}
	switch {
	case c.EventBuffer == 0:
		c.EventBuffer = DefaultEventBuffer
	case c.EventBuffer < 0:
		return fmt.Errorf("%w: EventBuffer %d is negative", ErrConfig, c.EventBuffer)
	}
	switch {
	case c.LogRate == 0:
		c.LogRate = DefaultLogRate
	case c.LogRate < 0 || c.LogRate != c.LogRate: // NaN too
		return fmt.Errorf("%w: LogRate %v is not a positive rate", ErrConfig, c.LogRate)
	}
	switch {
	case c.LogBurst == 0:
		c.LogBurst = DefaultLogBurst
	case c.LogBurst < 0:
		return fmt.Errorf("%w: LogBurst %d is negative", ErrConfig, c.LogBurst)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// scale stretches d by s, saturating instead of overflowing.
func scale(d time.Duration, s float64) time.Duration {
	f := float64(d) * s
	if f >= math.MaxInt64 || f <= math.MinInt64 {
		if d < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return time.Duration(f)
}

// splitSeed parses a seed: "host:port", "[v6]:port", a bare IP address or
// a bare host name (the last two on DefaultPort); "dns+host:port", every A
// and AAAA record of host, on port; or "dnssrv+_service._proto.name", whose
// SRV records name the hosts and ports (port is 0 then, and host the SRV
// name). See parseSeed for how each form is resolved.
func splitSeed(s string) (host string, port uint16, err error) {
	if name, ok := strings.CutPrefix(s, seedSRVPrefix); ok {
		if !validSRVName(name) {
			return "", 0, fmt.Errorf("%w: seed %q: want %s_service._proto.name", ErrConfig, s, seedSRVPrefix)
		}
		return name, 0, nil
	}
	if hp, ok := strings.CutPrefix(s, seedDNSPrefix); ok {
		// The port is required: a DNS seed names a service's port, and
		// guessing DefaultPort would hide a typo.
		h, p, err := net.SplitHostPort(hp)
		n, perr := strconv.ParseUint(p, 10, 16)
		if err != nil || perr != nil || n == 0 || h == "" || strings.Contains(h, "+") {
			return "", 0, fmt.Errorf("%w: seed %q: want %shost:port", ErrConfig, s, seedDNSPrefix)
		}
		return h, uint16(n), nil
	}
	bad := fmt.Errorf("%w: seed %q: want host:port", ErrConfig, s)
	if _, err := netip.ParseAddr(s); err == nil {
		return s, DefaultPort, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		if s == "" || strings.ContainsAny(s, ":[]") {
			return "", 0, bad
		}
		h, p = s, strconv.Itoa(DefaultPort)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	// No host name has a '+': one here is a misspelt discovery prefix.
	if err != nil || n == 0 || h == "" || strings.Contains(h, "+") {
		return "", 0, bad
	}
	return h, uint16(n), nil
}

// defaultName is the host name with a random suffix, so that two nodes on
// one host (or two runs of one node) do not collide.
func defaultName() string {
	host, err := os.Hostname()
	if err != nil || host == "" || len(host) > MaxNameLen-8 || !utf8.ValidString(host) {
		host = "node"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
