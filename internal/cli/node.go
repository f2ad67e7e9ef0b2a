package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/bridge"
	kafkabus "github.com/warpmesh/warp/bridge/kafka"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

func init() { subcommands = append(subcommands, newNodeCmd) }

// DefaultHTTPAddr is where warp node serves its HTTP API, and where the
// client subcommands look for it.
const DefaultHTTPAddr = "127.0.0.1:7947"

// nodeFlags are the flags of warp node.
type nodeFlags struct {
	name, bind, advertise string
	port                  int
	zone, region, label   string
	seeds                 []string
	group, iface          string
	heartbeat             time.Duration
	keyFile               string
	profile, fanout       string
	timeScale             float64
	ackTimeout            time.Duration
	httpAddr              string
	expectMembers         int
	logFormat, logLevel   string
	dnsServer             string
	// bridge is the --bridge URL ("": no gateway), bridgeScope what it
	// relays ("" means global).
	bridge, bridgeScope string
}

func newNodeCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a long-lived mesh node with an HTTP API and Prometheus metrics",
		Long: "node runs one member of a Warp Mesh until it is stopped. It joins the seeds\n" +
			"(and keeps rejoining them), carries invalidations, and serves an HTTP API\n" +
			"for services not written in Go: POST /v1/publish, POST /v1/revoke,\n" +
			"GET /v1/watch, GET /v1/members, GET /healthz, GET /readyz, GET /metrics.\n\n" +
			"Seeds are host:port, dns+HOST:PORT (every A/AAAA record of HOST, such as a\n" +
			"Kubernetes headless service) or dnssrv+_service._proto.name (SRV records);\n" +
			"names are resolved again on every rejoin.\n\n" +
			"Signals: SIGHUP reloads --key-file (keys added, primary switched, removed\n" +
			"keys dropped; a bad file is logged and the old keys stay). SIGTERM or\n" +
			"SIGINT leave the cluster gracefully and exit 0; a second one exits at once.\n\n" +
			"--bridge runs a gateway between the mesh and a broker, on a bridge bus\n" +
			"named NAME" + bridgeNameSuffix + " with the node's zone, region, keys and label:\n" +
			"  nats://[USER:PASS@]HOST[:4222][,HOST…]/SUBJECT\n" +
			"  redis://[[USER]:PASS@]HOST[:6379][/DB][?channel=CHANNEL]   (rediss:// for TLS)\n" +
			"  kafka://HOST[:9092][,HOST…]/TOPIC\n" +
			"An empty subject, channel or topic means " + DefaultBridgeName + ". The gateway relays\n" +
			"ScopeGlobal events both ways (--bridge-scope all: every event), never\n" +
			"back where they came from. An unreachable broker stops the node at start.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNode(cmd.Context(), cmd.ErrOrStderr(), f, os.Exit)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "node name, unique in the cluster (default: host name and a random suffix)")
	fl.StringVar(&f.bind, "bind", mesh.DefaultBindAddr, "IP address to listen on for gossip and data")
	fl.IntVar(&f.port, "port", mesh.DefaultPort, "UDP and TCP port for gossip and data (0: the system chooses)")
	fl.StringVar(&f.advertise, "advertise", "", "address other nodes reach this one at, ip or ip:port (default: the bound address)")
	fl.StringVar(&f.zone, "zone", "", "availability zone of this node")
	fl.StringVar(&f.region, "region", "", "region of this node")
	fl.StringSliceVar(&f.seeds, "seeds", nil, "comma-separated nodes to join: host:port, dns+HOST:PORT or dnssrv+_service._proto.name")
	fl.StringVar(&f.group, "group", "", "find nodes by UDP multicast on this group, ip or ip:port (for example 239.0.0.1; port 7945 by default), with --seeds or without; one network segment (TTL 1)")
	fl.StringVar(&f.iface, "interface", "", "network interface for --group (default: the advertise address's, else the first multicast-capable one)")
	fl.DurationVar(&f.heartbeat, "heartbeat", 0, "failure detector period (default: the profile's, 1s on lan); any value from 50ms up")
	fl.StringVar(&f.keyFile, "key-file", "", "file of base64 secret keys, one per line, the first one primary (see warp keygen); SIGHUP reloads it")
	fl.StringVar(&f.label, "label", "", "cluster label: frames and gossip of another label are dropped")
	fl.StringVar(&f.profile, "profile", "lan", "failure-detection timing: lan, local or wan")
	fl.StringVar(&f.fanout, "fanout", "auto", "fanout mode: auto, direct or relay")
	fl.Float64Var(&f.timeScale, "time-scale", 1, "stretch every interval and timeout of the node by this factor (slow links, simulations)")
	fl.DurationVar(&f.ackTimeout, "ack-timeout", mesh.DefaultAckTimeout, "default bound of awaiting publishes that give no timeout")
	fl.StringVar(&f.httpAddr, "http", DefaultHTTPAddr, "address of the HTTP API (port 0: the system chooses)")
	fl.IntVar(&f.expectMembers, "expect-members", 0, "alive members (this node included) needed before /readyz answers 200 (default: 2 with --seeds or --group, else 1)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.dnsServer, "dns-server", "", "resolve seed names with this DNS server (host:port) instead of the system's resolver")
	fl.StringVar(&f.bridge, "bridge", "", "run a gateway to a broker: nats://HOST[:PORT][,HOST…]/SUBJECT, redis://HOST[:PORT][/DB][?channel=NAME] or kafka://HOST[:PORT][,HOST…]/TOPIC (default subject, channel or topic "+DefaultBridgeName+")")
	fl.StringVar(&f.bridgeScope, "bridge-scope", "global", "events --bridge relays: global (ScopeGlobal ones) or all (every scope: the mesh and the broker are one region)")
	return cmd
}

// check validates the flags that need more than their type, and returns
// the mesh's options for them.
func (f nodeFlags) check() (mesh.MeshOptions, error) {
	var o mesh.MeshOptions
	if f.port < 0 || f.port > 65535 {
		return o, usagef("--port %d out of range (0..65535)", f.port)
	}
	fanout, err := mesh.ParseFanoutMode(f.fanout)
	if err != nil {
		return o, usagef("--fanout %q: want auto, direct or relay", f.fanout)
	}
	switch f.profile {
	case "lan", "local", "wan":
	default:
		return o, usagef("--profile %q: want lan, local or wan", f.profile)
	}
	if !(f.timeScale > 0) || math.IsInf(f.timeScale, 0) {
		return o, usagef("--time-scale %v: want a positive number", f.timeScale)
	}
	if f.ackTimeout <= 0 {
		return o, usagef("--ack-timeout %v: want a positive duration", f.ackTimeout)
	}
	if f.heartbeat < 0 {
		return o, usagef("--heartbeat %v is negative", f.heartbeat)
	}
	if f.iface != "" && f.group == "" {
		return o, usagef("--interface %q needs --group", f.iface)
	}
	if f.expectMembers < 0 {
		return o, usagef("--expect-members %d is negative", f.expectMembers)
	}
	if _, _, err := net.SplitHostPort(f.httpAddr); err != nil {
		return o, usagef("--http %q: want host:port", f.httpAddr)
	}
	if f.dnsServer != "" {
		if _, _, err := net.SplitHostPort(f.dnsServer); err != nil {
			return o, usagef("--dns-server %q: want host:port", f.dnsServer)
		}
	}
	var seeds []string
	for _, s := range f.seeds {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	port := f.port
	if port == 0 {
		port = -1 // MeshOptions: -1 lets the system choose
	}
	o = mesh.MeshOptions{
		NodeName:      f.name,
		BindAddr:      f.bind,
		Port:          port,
		AdvertiseAddr: f.advertise,
		Peers:         seeds,
		Group:         f.group,
		Interface:     f.iface,
		Heartbeat:     f.heartbeat,
		Zone:          f.zone,
		Region:        f.region,
		Label:         f.label,
		Profile:       f.profile,
		Fanout:        fanout,
		TimeScale:     f.timeScale,
		AckTimeout:    f.ackTimeout,
	}
	return o, nil
}

func (f nodeFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", f.logFormat)
}

// Bounds of a node's shutdown: the HTTP server's drain, then the bus's
// graceful leave (bounded by membership's leave timeout).
const httpShutdownTimeout = 2 * time.Second

// runNode runs a node until ctx ends or a SIGINT/SIGTERM arrives; a second
// one calls exit at once. Logs go to logOut.
func runNode(ctx context.Context, logOut io.Writer, f nodeFlags, exit func(int)) error {
	opts, err := f.check()
	if err != nil {
		return err
	}
	spec, err := parseBridge(f.bridge, f.bridgeScope)
	if err != nil {
		return err
	}
	log, err := f.logger(logOut)
	if err != nil {
		return err
	}
	var keys [][]byte
	if f.keyFile != "" {
		if keys, err = readKeyFile(f.keyFile); err != nil {
			return err
		}
	}
	opts.SecretKeys = keys
	opts.Logger = log
	if f.dnsServer != "" {
		useDNSServer(f.dnsServer)
	}

	// Signals are caught before anything starts, so that an early SIGHUP
	// does not kill the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	term := make(chan os.Signal, 2)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(term)

	nm := newNodeMetrics()
	if err := reportMemberlistMetrics(nm.reg); err != nil {
		return fmt.Errorf("memberlist metrics: %w", err)
	}
	opts.Recorder = nm.recorder

	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	// The broker is dialled before the node joins the mesh, so that an
	// unreachable one stops the node before the cluster sees it.
	var link *bridgeLink
	if spec != nil {
		if link, err = dialBridge(ctx, spec, f.name); err != nil {
			_ = ln.Close()
			return err
		}
	}
	bus, err := mesh.NewMeshBus(opts)
	if err != nil {
		_ = ln.Close()
		link.close()
		return err
	}
	var nb *nodeBridge
	if link != nil {
		nb, err = startBridge(link, bus, bridgeBusConfig{
			zone: f.zone, region: f.region, keys: keys, label: f.label,
			ackTimeout: f.ackTimeout, timeScale: f.timeScale, log: log,
		})
		if err != nil {
			_ = ln.Close()
			_ = bus.Close()
			link.close()
			return err
		}
		nm.watchBridge(nb.gw, nb.bus)
	}
	expect := f.expectMembers
	if expect == 0 {
		expect = 1
		if len(opts.Peers) > 0 || opts.Group != "" {
			expect = 2
		}
	}
	api := newAPIServer(apiConfig{Bus: bus, Logger: log, ExpectMembers: expect, Metrics: nm.handler()})
	nm.watchBus(bus, api.watching)
	handler := api.handler()
	if nb != nil {
		handler = nb.withReadyz(api, handler)
	}

	// Cancelling base ends the watch streams, which Shutdown would
	// otherwise wait for.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           handler,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	started := []any{"name", bus.Name(), "addr", bus.Addr().String(), "http", ln.Addr().String(),
		"zone", f.zone, "region", f.region, "seeds", opts.Peers, "keys", keyIDs(keys)}
	if nb != nil {
		started = append(started, "bridge", spec.display, "bridge_scope", spec.scopeName(), "bridge_name", nb.bus.Name())
	}
	log.Info("node started", started...)

	// The first SIGINT/SIGTERM stops the node gracefully; a second one
	// exits at once, for an operator who does not want to wait.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		n := 0
		for {
			select {
			case <-term:
				n++
				if n == 1 {
					stop()
					continue
				}
				log.Warn("second signal: exiting at once")
				exit(ExitError)
				return
			case <-finished:
				return
			}
		}
	}()

	var serveErr error
loop:
	for {
		select {
		case <-stopCtx.Done():
			break loop
		case serveErr = <-served:
			log.Error("HTTP API stopped", "err", serveErr)
			break loop
		case <-hup:
			keys = reloadKeys(log, bus, f.keyFile, keys)
			if nb != nil && !slices.EqualFunc(nb.keys, keys, bytes.Equal) {
				// The broker bus seals with the node's keys: it follows.
				var err error
				if nb.keys, err = rotateKeys(nb.bus, nb.keys, keys); err != nil {
					log.Error("the --bridge bus's key rotation stopped half-way", "err", err, "bridge_keys", keyIDs(nb.keys))
				} else {
					log.Info("the --bridge bus's keys reloaded", "primary", keyID(nb.keys[0]), "bridge_keys", keyIDs(nb.keys))
				}
			}
		}
	}

	log.Info("leaving the cluster", "name", bus.Name())
	cancelBase()
	shutCtx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	// The gateway stops relaying first: the mesh refuses relays as soon as
	// its Close begins. The broker bus stays a member of the broker until
	// the mesh has left.
	if nb != nil {
		nb.stopRelaying()
	}
	closeErr := bus.Close()
	if closeErr != nil {
		log.Warn("leave was not confirmed", "err", closeErr)
	}
	log.Info("left", "name", bus.Name())
	if nb != nil {
		nb.close()
		st := nb.gw.Stats()
		log.Info("bridge closed", "bridge", spec.display, "relayed_out", st.LocalToRemote, "relayed_in", st.RemoteToLocal)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("HTTP API: %w", serveErr)
	}
	return nil
}

// reloadKeys reads the key file again and moves the node to its keys. A
// file that cannot be read or parsed changes nothing. It returns the keys
// the node has afterwards.
func reloadKeys(log *slog.Logger, kr keyring, path string, have [][]byte) [][]byte {
	if path == "" {
		log.Warn("SIGHUP: no --key-file to reload")
		return have
	}
	wanted, err := readKeyFile(path)
	if err != nil {
		log.Error("cannot reload keys", "err", err, "kept", keyIDs(have))
		return have
	}
	now, err := rotateKeys(kr, have, wanted)
	if err != nil {
		log.Error("key rotation stopped half-way", "err", err, "keys", keyIDs(now))
		return now
	}
	log.Info("keys reloaded", "primary", keyID(now[0]), "keys", keyIDs(now))
	return now
}

// useDNSServer makes the process's resolver ask server for every name,
// with the Go resolver (the seeds' names, memberlist's). It is for tests
// and for hosts whose system resolver does not see the cluster's DNS.
func useDNSServer(server string) {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// reportMemberlistMetrics sends memberlist's own metrics, which it reports
// through go-metrics' process-wide sink, to reg. Only warp node calls it:
// the library sets no global state.
func reportMemberlistMetrics(reg prometheus.Registerer) error {
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Expiration: 5 * time.Minute})
	if err != nil {
		return err
	}
	cfg := gometrics.DefaultConfig("")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false // the Go collector reports those
	_, err = gometrics.NewGlobal(cfg, sink)
	return err
}

// --bridge: a gateway between the node's mesh and a broker.

// DefaultBridgeName is the NATS subject, Redis channel or Kafka topic of a
// --bridge URL that names none.
const DefaultBridgeName = "warp.events"

// bridgeNameSuffix makes the name of a node's broker bus from the node's
// name: node names must be unique across the buses a gateway joins.
const bridgeNameSuffix = "-bridge"

// Default broker ports of a --bridge URL without one.
const (
	defaultNATSPort  = "4222"
	defaultKafkaPort = "9092"
)

// bridgeDialTimeout bounds the first connection to the broker.
const bridgeDialTimeout = 5 * time.Second

// bridgeSpec is a parsed --bridge URL and --bridge-scope.
type bridgeSpec struct {
	scheme string // "nats", "redis", "rediss" or "kafka"
	// servers are nats.Connect's server URLs, or the Kafka brokers'
	// host:port.
	servers []string
	// name is the subject, channel or topic.
	name string
	// redis is the Redis client's options.
	redis     *goredis.Options
	allScopes bool
	// display is the URL with its password hidden, for logs and errors.
	display string
}

func (s *bridgeSpec) scopeName() string {
	if s.allScopes {
		return "all"
	}
	return "global"
}

// parseBridge parses --bridge and --bridge-scope; every error is a usage
// error. It returns nil when raw is empty.
func parseBridge(raw, scope string) (*bridgeSpec, error) {
	var all bool
	switch scope {
	case "", "global":
	case "all":
		all = true
	default:
		return nil, usagef("--bridge-scope %q: want global or all", scope)
	}
	if raw == "" {
		return nil, nil
	}
	display := redactURL(raw)
	spec, err := parseBridgeURL(raw)
	if err != nil {
		return nil, usagef("--bridge %q: %v", display, err)
	}
	spec.allScopes, spec.display = all, display
	return spec, nil
}

// parseBridgeURL parses the URL forms of --bridge (see the command's help).
// Its errors never quote the password.
func parseBridgeURL(raw string) (*bridgeSpec, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("want nats://, redis:// or kafka://HOST…")
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "redis", "rediss":
		return parseRedisURL(scheme, raw)
	case "nats", "kafka":
	default:
		return nil, fmt.Errorf("unknown scheme %q: want nats, redis or kafka", scheme)
	}
	// nats and kafka take several hosts, which net/url does not parse.
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	path, query, _ := strings.Cut(tail, "?")
	if query != "" || strings.Contains(tail, "#") {
		return nil, fmt.Errorf("%s:// takes no query or fragment", scheme)
	}
	name, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, fmt.Errorf("bad escape in %q", path)
	}
	if name == "" {
		name = DefaultBridgeName
	}
	userinfo := ""
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	spec := &bridgeSpec{scheme: scheme, name: name}
	defPort := defaultNATSPort
	if scheme == "kafka" {
		if userinfo != "" {
			return nil, errors.New("kafka:// takes no user or password (build a bus with kafka.WithSaramaConfig for SASL)")
		}
		if !validKafkaTopic(name) {
			return nil, fmt.Errorf("topic %q: want 1 to 249 of a-z A-Z 0-9 . _ -", name)
		}
		defPort = defaultKafkaPort
	} else if !validNATSSubject(name) {
		return nil, fmt.Errorf("subject %q: not a NATS subject one can publish to (no spaces, * or >, no empty token)", name)
	}
	for h := range strings.SplitSeq(authority, ",") {
		hp, err := hostPort(strings.TrimSpace(h), defPort)
		if err != nil {
			return nil, err
		}
		if scheme == "nats" {
			hp = "nats://" + userinfo + hp
		}
		spec.servers = append(spec.servers, hp)
	}
	return spec, nil
}

// parseRedisURL parses a Redis URL as go-redis does, with the channel in
// the query: redis://[[USER]:PASS@]HOST[:PORT][/DB][?channel=NAME&…].
func parseRedisURL(scheme, raw string) (*bridgeSpec, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL, password included
		}
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	if u.Hostname() == "" {
		return nil, errors.New("missing host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q out of range (1..65535)", p)
		}
	}
	q := u.Query()
	name := DefaultBridgeName
	if vs, ok := q["channel"]; ok {
		if len(vs) != 1 || vs[0] == "" {
			return nil, errors.New("want one non-empty channel=NAME")
		}
		name = vs[0]
	}
	q.Del("channel")
	u.RawQuery = q.Encode()
	opts, err := goredis.ParseURL(u.String())
	if err != nil {
		if strings.Contains(err.Error(), "database number") {
			return nil, fmt.Errorf("%v (the path is the database number; the channel goes in ?channel=NAME)", err)
		}
		return nil, err
	}
	return &bridgeSpec{scheme: scheme, servers: []string{opts.Addr}, name: name, redis: opts}, nil
}

// hostPort checks HOST[:PORT] (an IPv6 address in brackets) and adds
// defPort when the port is missing.
func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("missing host")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		switch {
		case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]"):
			host = h[1 : len(h)-1]
		case strings.Contains(h, ":"):
			return "", fmt.Errorf("host %q: want HOST[:PORT] (an IPv6 address in brackets)", h)
		default:
			host = h
		}
		port = defPort
	}
	if host == "" {
		return "", errors.New("missing host")
	}
	if strings.ContainsAny(host, " \t\r\n/?#@[]") {
		return "", fmt.Errorf("host %q: not a host name or address", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q out of range (1..65535)", port)
	}
	return net.JoinHostPort(host, port), nil
}

// validNATSSubject: what bridge/nats accepts as a subject to publish to.
func validNATSSubject(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n*>") && !strings.HasPrefix(s, ".") &&
		!strings.HasSuffix(s, ".") && !strings.Contains(s, "..")
}

// validKafkaTopic: Kafka's rule for topic names.
func validKafkaTopic(s string) bool {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// redactURL hides the password (or token) in a URL's user information,
// also in a URL that does not parse.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if ok {
		scheme += "://"
	} else {
		scheme, rest = "", raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if hasPass {
		user += ":xxxxx"
	} else {
		user = "xxxxx" // a lone NATS token is a secret too
	}
	return scheme + user + rest[at:]
}

// bridgeLink is the broker connection of --bridge, made before the node
// joins the mesh so that an unreachable broker stops the node before it
// joins. A Kafka bus dials its brokers itself, when it is made.
type bridgeLink struct {
	spec *bridgeSpec
	nc   *natsgo.Conn
	rc   *goredis.Client
}

// dialBridge connects to the broker of spec. An unreachable broker is an
// error (not a usage error).
func dialBridge(ctx context.Context, spec *bridgeSpec, nodeName string) (*bridgeLink, error) {
	l := &bridgeLink{spec: spec}
	clientName := "warp node"
	if nodeName != "" {
		clientName += " " + nodeName
	}
	switch spec.scheme {
	case "nats":
		// The connection carries the node's one bus: NoEcho spares it the
		// echo of its own frames.
		nc, err := natsgo.Connect(strings.Join(spec.servers, ","), natsgo.Name(clientName),
			natsgo.Timeout(bridgeDialTimeout), natsgo.MaxReconnects(-1), natsgo.NoEcho())
		if err != nil {
			return nil, fmt.Errorf("--bridge %s: cannot reach the NATS server: %w", spec.display, err)
		}
		l.nc = nc
	case "redis", "rediss":
		// A plain dial first: go-redis's pool logs every failed dial to
		// the process's stderr through its global logger.
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, bridgeDialTimeout)
		defer cancel()
		conn, err := d.DialContext(dctx, spec.redis.Network, spec.redis.Addr)
		if err != nil {
			return nil, fmt.Errorf("--bridge %s: cannot reach Redis: %w", spec.display, err)
		}
		_ = conn.Close()
		rc := goredis.NewClient(spec.redis)
		if err := rc.Ping(dctx).Err(); err != nil {
			_ = rc.Close()
			return nil, fmt.Errorf("--bridge %s: cannot reach Redis: %w", spec.display, err)
		}
		l.rc = rc
	}
	return l, nil
}

// close closes the connection; a nil link is fine.
func (l *bridgeLink) close() {
	if l == nil {
		return
	}
	if l.nc != nil {
		l.nc.Close()
	}
	if l.rc != nil {
		_ = l.rc.Close()
	}
}

// brokerBus is what a node needs of its broker bus: a NATSBus, RedisBus or
// KafkaBus.
type brokerBus interface {
	syncbus.Bus
	syncbus.MetricsReporter
	keyring
	Name() string
	Err() error
	Health() bridge.Health
	Close() error
}

// bridgeBusConfig is what a node's broker bus shares with its mesh node,
// so that frames are sealed alike and the node is in the same zone.
type bridgeBusConfig struct {
	zone, region string
	keys         [][]byte
	label        string
	ackTimeout   time.Duration
	timeScale    float64
	log          *slog.Logger
}

// openBus makes the broker bus named name on the link.
func (l *bridgeLink) openBus(name string, c bridgeBusConfig) (brokerBus, error) {
	var b brokerBus
	switch l.spec.scheme {
	case "nats":
		b = natsbus.NewNATSBus(l.nc, l.spec.name, natsbus.WithNodeName(name), natsbus.WithZone(c.zone),
			natsbus.WithRegion(c.region), natsbus.WithSecretKeys(c.keys...), natsbus.WithLabel(c.label),
			natsbus.WithAckTimeout(c.ackTimeout), natsbus.WithTimeScale(c.timeScale), natsbus.WithLogger(c.log))
	case "redis", "rediss":
		b = redisbus.NewRedisBus(l.rc, l.spec.name, redisbus.WithNodeName(name), redisbus.WithZone(c.zone),
			redisbus.WithRegion(c.region), redisbus.WithSecretKeys(c.keys...), redisbus.WithLabel(c.label),
			redisbus.WithAckTimeout(c.ackTimeout), redisbus.WithTimeScale(c.timeScale), redisbus.WithLogger(c.log))
	case "kafka":
		sc := sarama.NewConfig()
		sc.Net.DialTimeout = bridgeDialTimeout
		kb, err := kafkabus.NewKafkaBusFromBrokers(l.spec.servers, l.spec.name, kafkabus.WithNodeName(name),
			kafkabus.WithZone(c.zone), kafkabus.WithRegion(c.region), kafkabus.WithSecretKeys(c.keys...),
			kafkabus.WithLabel(c.label), kafkabus.WithAckTimeout(c.ackTimeout), kafkabus.WithTimeScale(c.timeScale),
			kafkabus.WithLogger(c.log), kafkabus.WithSaramaConfig(sc))
		if err != nil {
			return nil, fmt.Errorf("--bridge %s: %w", l.spec.display, err)
		}
		b = kb
	default:
		return nil, fmt.Errorf("--bridge: unknown scheme %q", l.spec.scheme)
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("--bridge %s: %w", l.spec.display, err)
	}
	return b, nil
}

// nodeBridge is a running --bridge: the broker bus and the gateway
// between it and the node's mesh.
type nodeBridge struct {
	link *bridgeLink
	bus  brokerBus
	gw   *bridge.Gateway
	keys [][]byte // the keys the broker bus seals with
}

// startBridge makes the broker bus, named after the mesh node, and the
// gateway. On error it closes what it made, but not the link.
func startBridge(link *bridgeLink, mb *mesh.MeshBus, c bridgeBusConfig) (*nodeBridge, error) {
	name := mb.Name()
	if limit := wire.MaxNameLen - len(bridgeNameSuffix); len(name) > limit {
		name = name[:limit]
	}
	name += bridgeNameSuffix
	c.log = c.log.With("bridge", link.spec.display)
	bb, err := link.openBus(name, c)
	if err != nil {
		return nil, err
	}
	opts := []bridge.GatewayOption{bridge.WithGatewayLogger(c.log), bridge.WithGatewayName(mb.Name())}
	if link.spec.allScopes {
		opts = append(opts, bridge.WithAllScopes())
	}
	gw, err := bridge.NewGateway(mb, bb, opts...)
	if err != nil {
		_ = bb.Close()
		return nil, fmt.Errorf("--bridge %s: %w", link.spec.display, err)
	}
	return &nodeBridge{link: link, bus: bb, gw: gw, keys: c.keys}, nil
}

// stopRelaying closes the gateway.
func (nb *nodeBridge) stopRelaying() { _ = nb.gw.Close() }

// close closes the gateway (if still open), the broker bus and the link.
func (nb *nodeBridge) close() {
	_ = nb.gw.Close()
	_ = nb.bus.Close()
	nb.link.close()
}

// bridgeStatus is the bridge's part of /readyz.
type bridgeStatus struct {
	URL   string `json:"url"`
	Scope string `json:"scope"`
	// Name is the broker bus's node name.
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
	// Members counts the alive nodes on the broker, this one included.
	Members int `json:"members"`
	// The gateway's counters (bridge.GatewayStats): out is mesh to broker.
	RelayedOut    uint64 `json:"relayed_out"`
	RelayedIn     uint64 `json:"relayed_in"`
	Scoped        uint64 `json:"scoped"`
	Returning     uint64 `json:"returning"`
	SourceResyncs uint64 `json:"source_resyncs"`
	Errors        uint64 `json:"errors"`
}

func (nb *nodeBridge) status() bridgeStatus {
	h, st := nb.bus.Health(), nb.gw.Stats()
	out := bridgeStatus{
		URL: nb.link.spec.display, Scope: nb.link.spec.scopeName(), Name: nb.bus.Name(),
		Connected: h.Healthy && h.Connected, Members: h.Alive,
		RelayedOut: st.LocalToRemote, RelayedIn: st.RemoteToLocal, Scoped: st.Scoped,
		Returning: st.Returning, SourceResyncs: st.SourceResyncs, Errors: st.Errors,
	}
	if h.Err != nil {
		out.Error = h.Err.Error()
	}
	return out
}

// nodeReadiness is /readyz of a node with --bridge: ready once the mesh is
// and the broker bus is connected.
type nodeReadiness struct {
	readiness
	Bridge bridgeStatus `json:"bridge"`
}

// withReadyz serves /readyz with the bridge's state, and next otherwise.
func (nb *nodeBridge) withReadyz(api *apiServer, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rd := nodeReadiness{readiness: api.readiness(), Bridge: nb.status()}
		rd.Ready = rd.Ready && rd.Bridge.Connected
		status := http.StatusOK
		if !rd.Ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, rd)
	})
	mux.Handle("/", next)
	return mux
}
