package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/mesh"
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
	keyFile               string
	profile, fanout       string
	timeScale             float64
	ackTimeout            time.Duration
	httpAddr              string
	expectMembers         int
	logFormat, logLevel   string
	dnsServer             string
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
			"SIGINT leave the cluster gracefully and exit 0; a second one exits at once.",
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
	fl.StringVar(&f.keyFile, "key-file", "", "file of base64 secret keys, one per line, the first one primary (see warp keygen); SIGHUP reloads it")
	fl.StringVar(&f.label, "label", "", "cluster label: frames and gossip of another label are dropped")
	fl.StringVar(&f.profile, "profile", "lan", "failure-detection timing: lan, local or wan")
	fl.StringVar(&f.fanout, "fanout", "auto", "fanout mode: auto, direct or relay")
	fl.Float64Var(&f.timeScale, "time-scale", 1, "stretch every interval and timeout of the node by this factor (slow links, simulations)")
	fl.DurationVar(&f.ackTimeout, "ack-timeout", mesh.DefaultAckTimeout, "default bound of awaiting publishes that give no timeout")
	fl.StringVar(&f.httpAddr, "http", DefaultHTTPAddr, "address of the HTTP API (port 0: the system chooses)")
	fl.IntVar(&f.expectMembers, "expect-members", 0, "alive members (this node included) needed before /readyz answers 200 (default: 2 with --seeds, else 1)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.dnsServer, "dns-server", "", "resolve seed names with this DNS server (host:port) instead of the system's resolver")
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
	bus, err := mesh.NewMeshBus(opts)
	if err != nil {
		_ = ln.Close()
		return err
	}
	expect := f.expectMembers
	if expect == 0 {
		expect = 1
		if len(opts.Peers) > 0 {
			expect = 2
		}
	}
	api := newAPIServer(apiConfig{Bus: bus, Logger: log, ExpectMembers: expect, Metrics: nm.handler()})
	nm.watchBus(bus, api.watching)

	// Cancelling base ends the watch streams, which Shutdown would
	// otherwise wait for.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           api.handler(),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	log.Info("node started", "name", bus.Name(), "addr", bus.Addr().String(), "http", ln.Addr().String(),
		"zone", f.zone, "region", f.region, "seeds", opts.Peers, "keys", keyIDs(keys))

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
		}
	}

	log.Info("leaving the cluster", "name", bus.Name())
	cancelBase()
	shutCtx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	closeErr := bus.Close()
	if closeErr != nil {
		log.Warn("leave was not confirmed", "err", closeErr)
	}
	log.Info("left", "name", bus.Name())
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
