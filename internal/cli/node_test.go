package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startedNode is a warp node run in this process by runNode.
type startedNode struct {
	http, addr string
	logs       *syncBuffer
	stop       context.CancelFunc
	done       chan error
}

// logLine returns the first JSON log line whose msg is msg, or nil.
func (n *startedNode) logLine(msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(n.logs.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

func startNodeInProcess(t *testing.T, f nodeFlags) *startedNode {
	t.Helper()
	f.bind, f.port, f.httpAddr = "127.0.0.1", 0, "127.0.0.1:0"
	f.profile, f.fanout, f.timeScale, f.ackTimeout = "local", "auto", 1, 5*time.Second
	f.logFormat, f.logLevel = "json", "info"
	ctx, cancel := context.WithCancel(context.Background())
	n := &startedNode{logs: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	go func() {
		n.done <- runNode(ctx, n.logs, f, func(code int) { t.Errorf("exit(%d) called", code) })
	}()
	eventually(t, 20*time.Second, func() bool { return n.logLine("node started") != nil },
		"the node did not start: %s", n.logs.String())
	started := n.logLine("node started")
	n.http, n.addr = "http://"+started["http"].(string), started["addr"].(string)
	t.Cleanup(func() {
		cancel()
		<-n.done
	})
	return n
}

func TestNodeServesItsAPIAndLeaves(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "warp.key")
	if err := os.WriteFile(keyFile, []byte(b64(key(7, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n1 := startNodeInProcess(t, nodeFlags{name: "n1", zone: "a", keyFile: keyFile})
	n2 := startNodeInProcess(t, nodeFlags{name: "n2", zone: "b", keyFile: keyFile, seeds: []string{n1.addr}})

	// n2 is ready once it joined (it has seeds, so it needs one peer).
	eventually(t, 20*time.Second, func() bool {
		resp, err := http.Get(n2.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "n2 never became ready")
	if started := n1.logLine("node started"); started["keys"] == nil || strings.Contains(n1.logs.String(), b64(key(7, 32))) {
		t.Errorf("key IDs not logged, or the key itself logged: %v", started)
	}

	code, out, errOut := runCLI(t, nil, "publish", "--addr", n1.http, "--await-zones", "2", "user:1")
	if code != ExitOK || !strings.Contains(out, "[a b]") {
		t.Fatalf("publish: exit %d %s%s", code, out, errOut)
	}
	fams := scrape(t, n1.http+"/metrics")
	if value(fams, "warp_published_total") != 1 || value(fams, "warp_members", "zone", "b", "state", "alive") != 1 {
		t.Errorf("metrics: published %v, members(b) %v", value(fams, "warp_published_total"), value(fams, "warp_members", "zone", "b", "state", "alive"))
	}
	// go-metrics' sink is process-wide: the node started last has it.
	memberlist := 0
	for name := range scrape(t, n2.http+"/metrics") {
		if strings.HasPrefix(name, "memberlist_") {
			memberlist++
		}
	}
	if memberlist == 0 {
		t.Error("no memberlist metrics in /metrics")
	}

	// Stopping n2 makes it leave: n1 lists it as left.
	n2.stop()
	if err := <-n2.done; err != nil {
		t.Fatalf("n2 stopped with %v", err)
	}
	n2.done <- nil // for the cleanup
	if n2.logLine("left") == nil {
		t.Errorf("n2 did not log its leave: %s", n2.logs.String())
	}
	eventually(t, 10*time.Second, func() bool {
		var resp membersResponse
		err := (&clientFlags{addr: n1.http}).call(context.Background(), http.MethodGet, "/v1/members", nil, &resp)
		if err != nil {
			return false
		}
		for _, m := range resp.Members {
			if m.Name == "n2" {
				return m.State == "left"
			}
		}
		return false
	}, "n1 does not list n2 as left")
}

func TestNodeFailsCleanly(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(keyFile, []byte("not a key!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, nil, "node", "--key-file", keyFile, "--port", "0", "--http", "127.0.0.1:0")
	if code != ExitError || !strings.Contains(errOut, "not base64") {
		t.Errorf("bad key file: exit %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "node", "--key-file", filepath.Join(t.TempDir(), "missing"))
	if code != ExitError || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("missing key file: exit %d %q", code, errOut)
	}
	// The HTTP port is taken: an error, and nothing left running.
	n := startNodeInProcess(t, nodeFlags{name: "taken"})
	code, _, errOut = runCLI(t, nil, "node", "--port", "0", "--bind", "127.0.0.1", "--http", strings.TrimPrefix(n.http, "http://"))
	if code != ExitError || !strings.Contains(errOut, "--http") {
		t.Errorf("HTTP port in use: exit %d %q", code, errOut)
	}
}

// TestNodeDiscoveryFlags: --group, --interface and --heartbeat reach the
// mesh's options.
func TestNodeDiscoveryFlags(t *testing.T) {
	cmd := newNodeCmd()
	if err := cmd.ParseFlags([]string{"--group", "239.0.0.1", "--interface", "eth0", "--heartbeat", "100ms"}); err != nil {
		t.Fatal(err)
	}
	var f nodeFlags
	f.group, _ = cmd.Flags().GetString("group")
	f.iface, _ = cmd.Flags().GetString("interface")
	f.heartbeat, _ = cmd.Flags().GetDuration("heartbeat")
	f.port, f.httpAddr, f.profile, f.fanout, f.timeScale, f.ackTimeout = 0, "127.0.0.1:0", "lan", "auto", 1, time.Second
	o, err := f.check()
	if err != nil {
		t.Fatal(err)
	}
	if o.Group != "239.0.0.1" || o.Interface != "eth0" || o.Heartbeat != 100*time.Millisecond {
		t.Errorf("options %q %q %v", o.Group, o.Interface, o.Heartbeat)
	}
}
