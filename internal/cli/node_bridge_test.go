package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	kafkabus "github.com/warpmesh/warp/bridge/kafka"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// bridgeWait bounds every wait of these tests: generous for -race on a
// busy machine, never slept.
const bridgeWait = 30 * time.Second

func TestBridgeURLParsing(t *testing.T) {
	cases := []struct {
		url, scope string
		scheme     string
		servers    []string
		name       string
		all        bool
		display    string
	}{
		{url: "nats://127.0.0.1:4222/warp.inval", scheme: "nats", servers: []string{"nats://127.0.0.1:4222"}, name: "warp.inval"},
		{url: "nats://nats.example", scope: "all", scheme: "nats", servers: []string{"nats://nats.example:4222"}, name: DefaultBridgeName, all: true},
		{url: "NATS://h/", scope: "global", scheme: "nats", servers: []string{"nats://h:4222"}, name: DefaultBridgeName},
		{url: "nats://u:pw@a:4333,b/s.t", scheme: "nats", servers: []string{"nats://u:pw@a:4333", "nats://u:pw@b:4222"}, name: "s.t", display: "nats://u:xxxxx@a:4333,b/s.t"},
		{url: "nats://tok@h/s", scheme: "nats", servers: []string{"nats://tok@h:4222"}, name: "s", display: "nats://xxxxx@h/s"},
		{url: "nats://[::1]/s", scheme: "nats", servers: []string{"nats://[::1]:4222"}, name: "s"},
		{url: "nats://h/a%2Fb", scheme: "nats", servers: []string{"nats://h:4222"}, name: "a/b"},
		{url: "redis://127.0.0.1:6379/0?channel=inval", scheme: "redis", servers: []string{"127.0.0.1:6379"}, name: "inval"},
		{url: "redis://:pw@h:7000/3", scheme: "redis", servers: []string{"h:7000"}, name: DefaultBridgeName, display: "redis://:xxxxx@h:7000/3"},
		{url: "rediss://h", scheme: "rediss", servers: []string{"h:6379"}, name: DefaultBridgeName},
		{url: "kafka://k1:9092,k2/topic-a", scheme: "kafka", servers: []string{"k1:9092", "k2:9092"}, name: "topic-a"},
		{url: "kafka://k1", scheme: "kafka", servers: []string{"k1:9092"}, name: DefaultBridgeName},
	}
	for _, c := range cases {
		spec, err := parseBridge(c.url, c.scope)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if spec.scheme != c.scheme || !slices.Equal(spec.servers, c.servers) || spec.name != c.name || spec.allScopes != c.all {
			t.Errorf("%s: scheme %q servers %q name %q all %v", c.url, spec.scheme, spec.servers, spec.name, spec.allScopes)
		}
		want := c.display
		if want == "" {
			want = c.url
		}
		if spec.display != want {
			t.Errorf("%s: display %q, want %q", c.url, spec.display, want)
		}
	}

	spec, err := parseBridge("redis://user:pw@h:7000/3?channel=c&dial_timeout=2s", "")
	if err != nil {
		t.Fatal(err)
	}
	if o := spec.redis; o.Addr != "h:7000" || o.Username != "user" || o.Password != "pw" || o.DB != 3 || o.DialTimeout != 2*time.Second || spec.name != "c" {
		t.Errorf("redis options %+v, channel %q", o, spec.name)
	}
	if spec, err := parseBridge("rediss://h/0", ""); err != nil || spec.redis.TLSConfig == nil {
		t.Errorf("rediss: %v, TLS %v", err, spec != nil && spec.redis.TLSConfig != nil)
	}
	if spec, err := parseBridge("", "all"); spec != nil || err != nil {
		t.Errorf("no --bridge: %v %v", spec, err)
	}
}

// TestBridgeUsageErrorsExitTwoWithOneLine: a bad --bridge or
// --bridge-scope, from the flag or its WARP_* variable, exits 2 with one
// line that never shows the password.
func TestBridgeUsageErrorsExitTwoWithOneLine(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--bridge", "ftp://h/x"}, "unknown scheme"},
		{nil, []string{"--bridge", "127.0.0.1:4222"}, "want nats://"},
		{nil, []string{"--bridge", "nats://"}, "missing host"},
		{nil, []string{"--bridge", "nats:///warp"}, "missing host"},
		{nil, []string{"--bridge", "nats://a,,b/x"}, "missing host"},
		{nil, []string{"--bridge", "kafka://"}, "missing host"},
		{nil, []string{"--bridge", "kafka:///topic"}, "missing host"},
		{nil, []string{"--bridge", "redis://"}, "missing host"},
		{nil, []string{"--bridge", "redis:///0"}, "missing host"},
		{nil, []string{"--bridge", "nats://h:99999/x"}, "out of range"},
		{nil, []string{"--bridge", "nats://h:0/x"}, "out of range"},
		{nil, []string{"--bridge", "redis://h:0"}, "out of range"},
		{nil, []string{"--bridge", "nats://::1/x"}, "brackets"},
		{nil, []string{"--bridge", "nats://h/a.*"}, "subject"},
		{nil, []string{"--bridge", "nats://h/a..b"}, "subject"},
		{nil, []string{"--bridge", "nats://h/x?foo=1"}, "no query"},
		{nil, []string{"--bridge", "kafka://h/bad topic!"}, "topic"},
		{nil, []string{"--bridge", "kafka://u:p@h/t"}, "no user or password"},
		{nil, []string{"--bridge", "redis://:hunter2@h/warp.events"}, "?channel="},
		{nil, []string{"--bridge", "redis://h/0?channel=a&channel=b"}, "channel"},
		{nil, []string{"--bridge", "redis://h/0?channel="}, "channel"},
		{nil, []string{"--bridge", "redis://:hunter2@h/0?nope=1"}, "nope"},
		{nil, []string{"--bridge", "redis://:hunter2@h:x/0"}, "not a URL"},
		{nil, []string{"--bridge", "nats://h/x", "--bridge-scope", "everything"}, "--bridge-scope"},
		{nil, []string{"--bridge-scope", "local"}, "want global or all"},
		{map[string]string{"WARP_BRIDGE": "amqp://h/x"}, nil, "unknown scheme"},
		{map[string]string{"WARP_BRIDGE": "nats://h/x", "WARP_BRIDGE_SCOPE": "some"}, nil, "--bridge-scope"},
	}
	for _, c := range cases {
		args := append([]string{"node"}, c.args...)
		code, out, errOut := runCLI(t, c.env, args...)
		if code != ExitUsage {
			t.Errorf("%v %v: exit %d, want %d (stderr %q)", c.env, c.args, code, ExitUsage, errOut)
		}
		if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 || !strings.HasPrefix(errOut, "warp: ") || !strings.Contains(errOut, c.want) {
			t.Errorf("%v %v: want one line starting with \"warp: \" saying %q, got %q", c.env, c.args, c.want, errOut)
		}
		if strings.Contains(errOut, "hunter2") {
			t.Errorf("%v %v: the password is in the error: %q", c.env, c.args, errOut)
		}
		if out != "" {
			t.Errorf("%v %v: printed %q", c.env, c.args, out)
		}
	}
}

// closedPort returns a port of 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestBridgeUnreachableBrokerIsARuntimeError: a broker that does not
// answer at start is not a usage error: exit 1, one line, nothing left
// running (TestMain checks the goroutines).
func TestBridgeUnreachableBrokerIsARuntimeError(t *testing.T) {
	port := closedPort(t)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--bridge", fmt.Sprintf("nats://127.0.0.1:%d/warp", port)}, "cannot reach the NATS server"},
		{nil, []string{"--bridge", fmt.Sprintf("redis://:hunter2@127.0.0.1:%d/0", port)}, "cannot reach Redis"},
		{map[string]string{"WARP_BRIDGE": fmt.Sprintf("nats://127.0.0.1:%d", port)}, nil, "cannot reach the NATS server"},
		{nil, []string{"--bridge", fmt.Sprintf("kafka://127.0.0.1:%d/warp", port)}, "kafka"},
	} {
		args := append([]string{"node", "--port", "0", "--bind", "127.0.0.1", "--http", "127.0.0.1:0", "--profile", "local"}, c.args...)
		code, _, errOut := runCLI(t, c.env, args...)
		if code != ExitError {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, ExitError, errOut)
		}
		// The node logs on stderr before it fails; the reason is the
		// last line.
		lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "warp: --bridge ") || !strings.Contains(last, c.want) || strings.Contains(errOut, "hunter2") {
			t.Errorf("%v: want a last line saying %q without the password, got %q", c.args, c.want, errOut)
		}
	}
}

// testBroker is a broker a test started, and how to reach it.
type testBroker struct {
	// url is the --bridge URL.
	url string
	// client returns a bus of the broker on the same subject, channel or
	// topic as url, closed when the test ends.
	client func(t *testing.T, name, zone string, keys [][]byte, label string) syncbus.Bus
	// conns, if set, counts the broker's client connections.
	conns func() int
}

var bridgeTopics atomic.Int64

func startNATSBroker(t *testing.T) testBroker {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	subject := fmt.Sprintf("warp.cli.%d", bridgeTopics.Add(1))
	return testBroker{
		url: srv.ClientURL() + "/" + subject,
		client: func(t *testing.T, name, zone string, keys [][]byte, label string) syncbus.Bus {
			nc, err := natsgo.Connect(srv.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			b := natsbus.NewNATSBus(nc, subject, natsbus.WithNodeName(name), natsbus.WithZone(zone),
				natsbus.WithSecretKeys(keys...), natsbus.WithLabel(label), natsbus.WithPresenceInterval(100*time.Millisecond))
			t.Cleanup(func() { _ = b.Close(); nc.Close() })
			return b
		},
		conns: srv.NumClients,
	}
}

// startRedisBroker runs redis-server on a free port (never 6379's).
func startRedisBroker(t *testing.T) testBroker {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH; install it (apt-get install redis-server) to run the Redis bridge test")
	}
	port := strconv.Itoa(closedPort(t))
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + port
	probe := goredis.NewClient(&goredis.Options{Addr: addr})
	warptest.Eventually(t, 10*time.Second, func() bool { return probe.Ping(context.Background()).Err() == nil },
		"redis-server on %s did not answer", addr)
	_ = probe.Close()
	channel := fmt.Sprintf("warp:cli:%d", bridgeTopics.Add(1))
	return testBroker{
		url: "redis://" + addr + "/0?channel=" + channel,
		client: func(t *testing.T, name, zone string, keys [][]byte, label string) syncbus.Bus {
			c := goredis.NewClient(&goredis.Options{Addr: addr})
			b := redisbus.NewRedisBus(c, channel, redisbus.WithNodeName(name), redisbus.WithZone(zone),
				redisbus.WithSecretKeys(keys...), redisbus.WithLabel(label), redisbus.WithPresenceInterval(100*time.Millisecond))
			t.Cleanup(func() { _ = b.Close(); _ = c.Close() })
			return b
		},
	}
}

// startKafkaBroker runs an in-process Kafka cluster (kfake).
func startKafkaBroker(t *testing.T) testBroker {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	topic := fmt.Sprintf("warp-cli-%d", bridgeTopics.Add(1))
	return testBroker{
		url: "kafka://" + strings.Join(kc.ListenAddrs(), ",") + "/" + topic,
		client: func(t *testing.T, name, zone string, keys [][]byte, label string) syncbus.Bus {
			b, err := kafkabus.NewKafkaBusFromBrokers(kc.ListenAddrs(), topic, kafkabus.WithNodeName(name), kafkabus.WithZone(zone),
				kafkabus.WithSecretKeys(keys...), kafkabus.WithLabel(label), kafkabus.WithPresenceInterval(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	}
}

// watchStream collects the events of a node's GET /v1/watch (NDJSON)
// until the test ends.
type watchStream struct {
	mu     sync.Mutex
	events []eventJSON
}

func watchNode(t *testing.T, nodeURL, query string) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, sc := openWatch(t, ctx, nodeURL+"/v1/watch?"+query, true)
	w := &watchStream{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			var ev eventJSON
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				w.mu.Lock()
				w.events = append(w.events, ev)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return w
}

// find returns the first event of key, if any.
func (w *watchStream) find(key string) (eventJSON, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.events {
		if ev.Key == key {
			return ev, true
		}
	}
	return eventJSON{}, false
}

func (w *watchStream) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprint(w.events)
}

// getReadyz returns the status and answer of a node's /readyz.
func getReadyz(t *testing.T, nodeURL string) (int, nodeReadiness) {
	t.Helper()
	resp, err := http.Get(nodeURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd nodeReadiness
	if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, rd
}

func publishHTTP(t *testing.T, nodeURL, body string) {
	t.Helper()
	resp, err := http.Post(nodeURL+"/v1/publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publish %s: %d", body, resp.StatusCode)
	}
}

// TestBridgeEndToEnd runs a gateway node (zone a) with --bridge, a second
// mesh node (zone b) behind it, and a service on the broker sealing with
// the same key and label; for every broker:
//   - an event published on the mesh (on the second node) reaches the
//     service, and one the service publishes reaches a watch of the second
//     node, each keeping its origin and zone;
//   - ScopeLocal events stay on their side with the default scope, and
//     cross with --bridge-scope all;
//   - frames are sealed with the node's key file: a bus with another key
//     refuses them, and gw refuses its frames;
//   - /readyz and /metrics report the gateway;
//   - stopping the node announces the broker bus's departure on the broker
//     and closes its connection.
func TestBridgeEndToEnd(t *testing.T) {
	for _, c := range []struct {
		broker string
		start  func(*testing.T) testBroker
		scope  string
	}{
		{"nats", startNATSBroker, "global"},
		{"nats", startNATSBroker, "all"},
		{"redis", startRedisBroker, "global"},
		{"kafka", startKafkaBroker, "global"},
	} {
		t.Run(c.broker+"/"+c.scope, func(t *testing.T) {
			testBridgeEndToEnd(t, c.start(t), c.scope)
		})
	}
}

func testBridgeEndToEnd(t *testing.T, b testBroker, scope string) {
	secret := key(42, 32)
	keyFile := filepath.Join(t.TempDir(), "warp.key")
	if err := os.WriteFile(keyFile, []byte(b64(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const label = "bridge-test"
	gw := startNodeInProcess(t, nodeFlags{name: "gw", zone: "a", keyFile: keyFile, label: label, bridge: b.url, bridgeScope: scope})
	n2 := startNodeInProcess(t, nodeFlags{name: "n2", zone: "b", keyFile: keyFile, label: label, seeds: []string{gw.addr}})
	if started := gw.logLine("node started"); started["bridge_name"] != "gw"+bridgeNameSuffix || started["bridge_scope"] != scope {
		t.Errorf("the start log does not name the bridge: %v", started)
	}
	svc := b.client(t, "svc", "z", [][]byte{secret}, label)
	got, err := svc.(syncbus.AllSubscriber).SubscribeAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fromMesh := warptest.Collect(got)
	watch := watchNode(t, n2.http, "all")
	// A bus with another key can open none of gw's frames, nor gw its.
	stranger := b.client(t, "stranger", "z", [][]byte{key(7, 32)}, label)

	// Ready: n2 joined gw; gw's broker bus is connected and sees svc.
	warptest.Eventually(t, bridgeWait, func() bool {
		code, _ := getReadyz(t, n2.http)
		return code == http.StatusOK
	}, "n2 never became ready")
	warptest.Eventually(t, bridgeWait, func() bool {
		code, rd := getReadyz(t, gw.http)
		return code == http.StatusOK && rd.Bridge.Connected && rd.Bridge.Members >= 2
	}, "gw never became ready with its bridge: %v", func() string { _, rd := getReadyz(t, gw.http); return fmt.Sprint(rd) })
	warptest.Eventually(t, bridgeWait, func() bool {
		for _, m := range svc.(syncbus.MemberLister).Members() {
			if m.Name == "gw"+bridgeNameSuffix && m.Zone == "a" && m.State == syncbus.MemberAlive {
				return true
			}
		}
		return false
	}, "the service does not see gw's broker bus in zone a: %v", func() string { return fmt.Sprint(svc.(syncbus.MemberLister).Members()) })

	// Mesh → broker. The local event is published first: once the global
	// one arrived, the gateway has judged the local one too.
	publishHTTP(t, n2.http, `{"key":"mesh/local"}`)
	publishHTTP(t, n2.http, `{"key":"mesh/global","scope":"global"}`)
	fromMesh.WaitKey(t, "mesh/global", bridgeWait)
	// Broker → mesh.
	ctx := context.Background()
	if err := svc.Publish(ctx, "broker/local"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Publish(ctx, "broker/global", syncbus.WithScope(syncbus.ScopeGlobal)); err != nil {
		t.Fatal(err)
	}
	warptest.Eventually(t, bridgeWait, func() bool { _, ok := watch.find("broker/global"); return ok },
		"n2's watch never saw broker/global: %v", watch.String)

	for _, r := range fromMesh.Events() {
		if r.Event.Key == "mesh/global" && (r.Event.Origin != "n2" || r.Event.Zone != "b" || r.Event.Scope != syncbus.ScopeGlobal) {
			t.Errorf("on the broker, mesh/global lost its origin, zone or scope: %+v", r.Event)
		}
	}
	if ev, _ := watch.find("broker/global"); ev.Origin != "svc" || ev.Zone != "z" || ev.Scope != "global" {
		t.Errorf("on the mesh, broker/global lost its origin, zone or scope: %+v", ev)
	}
	// The gateway counts a relay once it returned, maybe after the event
	// arrived; an event kept for its scope may come late on the mesh.
	var rd nodeReadiness
	warptest.Eventually(t, bridgeWait, func() bool {
		_, rd = getReadyz(t, gw.http)
		return rd.Bridge.RelayedOut >= 1 && rd.Bridge.RelayedIn >= 1 && (scope == "all" || rd.Bridge.Scoped >= 2)
	}, "readyz does not count the relays: %v", func() string { return fmt.Sprint(rd.Bridge) })
	if scope == "all" {
		fromMesh.WaitKey(t, "mesh/local", bridgeWait)
		warptest.Eventually(t, bridgeWait, func() bool { _, ok := watch.find("broker/local"); return ok },
			"with --bridge-scope all, broker/local never reached n2: %v", watch.String)
	} else {
		if n := fromMesh.Count("mesh/local"); n != 0 {
			t.Errorf("a ScopeLocal event of the mesh reached the broker %d times", n)
		}
		if _, ok := watch.find("broker/local"); ok {
			t.Errorf("a ScopeLocal event of the broker reached the mesh: %v", watch.String())
		}
	}
	if rd.Bridge.Name != "gw"+bridgeNameSuffix || rd.Bridge.URL != b.url || rd.Bridge.Scope != scope {
		t.Errorf("readyz bridge %+v", rd.Bridge)
	}
	warptest.Eventually(t, bridgeWait, func() bool {
		return stranger.(syncbus.MetricsReporter).Metrics().DropsByReason["auth"] > 0
	}, "a bus with another key did not refuse gw's frames: %v", func() string { return fmt.Sprint(stranger.(syncbus.MetricsReporter).Metrics().DropsByReason) })
	warptest.Eventually(t, bridgeWait, func() bool {
		return value(scrape(t, gw.http+"/metrics"), "warp_bridge_input_dropped_total", "reason", "auth") > 0
	}, "gw did not count the frames of another key as refused")
	fams := scrape(t, gw.http+"/metrics")
	if value(fams, "warp_bridge_relayed_total", "direction", "out") < 1 || value(fams, "warp_bridge_relayed_total", "direction", "in") < 1 ||
		value(fams, "warp_bridge_connected") != 1 || value(fams, "warp_bridge_members", "state", "alive") < 2 ||
		value(fams, "warp_bridge_relay_errors_total") != 0 {
		t.Errorf("bridge metrics: out %v in %v connected %v alive %v errors %v",
			value(fams, "warp_bridge_relayed_total", "direction", "out"), value(fams, "warp_bridge_relayed_total", "direction", "in"),
			value(fams, "warp_bridge_connected"), value(fams, "warp_bridge_members", "state", "alive"), value(fams, "warp_bridge_relay_errors_total"))
	}
	if scope == "global" && value(fams, "warp_bridge_scoped_total") < 2 {
		t.Errorf("warp_bridge_scoped_total %v", value(fams, "warp_bridge_scoped_total"))
	}
	if fromMesh.Dups() != 0 || fromMesh.Resyncs() != 0 {
		t.Errorf("on the broker: %d duplicates, %d resyncs", fromMesh.Dups(), fromMesh.Resyncs())
	}

	// Stopping gw: the mesh leaves, then the broker bus announces its
	// departure and the connection closes.
	conns := 0
	if b.conns != nil {
		conns = b.conns()
	}
	gw.stop()
	if err := <-gw.done; err != nil {
		t.Fatalf("gw stopped with %v", err)
	}
	gw.done <- nil // for the cleanup
	logs := gw.logs.String()
	if left, closed := strings.Index(logs, `"msg":"left"`), strings.Index(logs, `"msg":"bridge closed"`); left < 0 || closed < left {
		t.Errorf("want the mesh to leave before the bridge closes: %s", logs)
	}
	warptest.Eventually(t, bridgeWait, func() bool {
		for _, m := range svc.(syncbus.MemberLister).Members() {
			if m.Name == "gw"+bridgeNameSuffix {
				return m.State == syncbus.MemberLeft
			}
		}
		return false
	}, "the service does not see gw's broker bus leave: %v", func() string { return fmt.Sprint(svc.(syncbus.MemberLister).Members()) })
	if b.conns != nil {
		warptest.Eventually(t, bridgeWait, func() bool { return b.conns() == conns-1 },
			"gw's broker connection stayed open: %s connections, had %d", func() string { return fmt.Sprint(b.conns()) }, conns)
	}
}

// TestBridgeScopeFlag: --bridge-scope picks the gateway's option; its
// default is global.
func TestBridgeScopeFlag(t *testing.T) {
	cmd := newNodeCmd()
	if def := cmd.Flags().Lookup("bridge-scope").DefValue; def != "global" {
		t.Errorf("--bridge-scope defaults to %q", def)
	}
	for scope, all := range map[string]bool{"": false, "global": false, "all": true} {
		spec, err := parseBridge("nats://h", scope)
		if err != nil || spec.allScopes != all || spec.scopeName() != map[bool]string{false: "global", true: "all"}[all] {
			t.Errorf("--bridge-scope %q: %v, all scopes %v", scope, err, spec != nil && spec.allScopes)
		}
	}
}

// TestBridgeFollowsKeyReload: SIGHUP moves the --bridge bus to the
// reloaded keys with the mesh node: after a rotation to a new key, a
// service holding only the new key gets the mesh's events through the
// gateway, and one holding only the old key can open none of them.
func TestBridgeFollowsKeyReload(t *testing.T) {
	b := startNATSBroker(t)
	oldKey, newKey := key(42, 32), key(43, 32)
	keyFile := filepath.Join(t.TempDir(), "warp.key")
	writeKeys := func(keys ...[]byte) {
		var s strings.Builder
		for _, k := range keys {
			s.WriteString(b64(k) + "\n")
		}
		if err := os.WriteFile(keyFile, []byte(s.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys(oldKey)
	const label = "bridge-rotation"
	gw := startNodeInProcess(t, nodeFlags{name: "gw", zone: "a", keyFile: keyFile, label: label, bridge: b.url})
	reload := func(want int) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		warptest.Eventually(t, bridgeWait, func() bool {
			return strings.Count(gw.logs.String(), "the --bridge bus's keys reloaded") >= want
		}, "the bridge bus did not follow the key file: %s", gw.logs.String)
	}
	// The three steps of a rotation, one SIGHUP each.
	writeKeys(oldKey, newKey)
	reload(1)
	writeKeys(newKey, oldKey)
	reload(2)
	writeKeys(newKey)
	reload(3)

	fresh := b.client(t, "fresh", "z", [][]byte{newKey}, label)
	stale := b.client(t, "stale", "z", [][]byte{oldKey}, label)
	got, err := fresh.(syncbus.AllSubscriber).SubscribeAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fromMesh := warptest.Collect(got)
	warptest.Eventually(t, bridgeWait, func() bool {
		code, rd := getReadyz(t, gw.http)
		// gw's broker bus sees fresh, not stale: its presence is sealed with
		// the removed key.
		return code == http.StatusOK && rd.Bridge.Connected && rd.Bridge.Members == 2
	}, "gw never became ready with its bridge: %v", func() string { _, rd := getReadyz(t, gw.http); return fmt.Sprint(rd) })
	publishHTTP(t, gw.http, `{"key":"rotated","scope":"global"}`)
	fromMesh.WaitKey(t, "rotated", bridgeWait)
	warptest.Eventually(t, bridgeWait, func() bool {
		return stale.(syncbus.MetricsReporter).Metrics().DropsByReason["auth"] > 0
	}, "a bus with the removed key opened gw's frames: %v", func() string { return fmt.Sprint(stale.(syncbus.MetricsReporter).Metrics().DropsByReason) })
}
