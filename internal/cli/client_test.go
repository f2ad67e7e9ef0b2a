package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestPublishCommand(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	addr := c.srv.URL

	code, out, errOut := runCLI(t, nil, "publish", "--addr", addr, "--await-zones", "3", "user:1", "user:2")
	if code != ExitOK || !strings.Contains(out, "user:1: applied in 3 zone(s) [a b c]") || !strings.Contains(out, "user:2: applied") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// --await is short for --await-replicas; the address also comes from WARP_ADDR.
	code, out, errOut = runCLI(t, map[string]string{"WARP_ADDR": addr}, "publish", "--await", "2", "user:3")
	if code != ExitOK || !strings.Contains(out, "user:3: applied by 2 node(s) [b c]") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "publish", "--addr", strings.TrimPrefix(addr, "http://"), "user:4")
	if code != ExitOK || !strings.Contains(out, "user:4: published in") {
		t.Fatalf("plain publish without a scheme: exit %d %s", code, out)
	}

	// Not satisfied: exit 3 and the figures on one line of stderr.
	code, out, errOut = runCLI(t, nil, "publish", "--addr", addr, "--await-zones", "4", "user:5")
	if code != ExitNotSatisfied || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"user:5: not satisfied: 0 of 4 zones", "failed fast: only 3 available"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("stderr has several lines: %q", errOut)
	}
	c.nodes["c"].SetAcking(false)
	code, _, errOut = runCLI(t, nil, "publish", "--addr", addr, "--await-replicas", "2", "--timeout", "50ms", "user:6")
	if code != ExitNotSatisfied || !strings.Contains(errOut, "1 of 2 replicas; deadline exceeded; acked nodes [b]") {
		t.Fatalf("deadline: exit %d %q", code, errOut)
	}

	// No node there: an ordinary failure.
	srvURL := c.srv.URL
	c.srv.Close()
	if code, _, errOut := runCLI(t, nil, "publish", "--addr", srvURL, "user:7"); code != ExitError || !strings.Contains(errOut, "cannot reach the node") {
		t.Errorf("no node: exit %d %q", code, errOut)
	}
}

func TestClientUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"publish"},
		{"publish", "--await-replicas", "1", "--await-zones", "1", "k"},
		{"publish", "--await", "1", "--await-replicas", "1", "k"},
		{"publish", "--await-zones", "-1", "k"},
		{"publish", "--zone-quorum", "2", "k"},
		{"publish", "--await-zones", "many", "k"},
		{"publish", "--timeout", "2h", "k"},
		{"publish", "--scope", "galaxy", "k"},
		{"publish", "--addr", "ftp://x", "k"},
		{"publish", ""},
		{"publish", strings.Repeat("k", 3000)},
		{"revoke", strings.Repeat("l", 3000)},
		{"revoke"},
		{"revoke", "a", "b"},
		{"watch"},
		{"watch", "k", "--prefix", "p"},
		{"watch", "a", "b"},
		{"watch", "--all", "--lease", "l"},
		{"members", "extra"},
		{"keygen", "extra"},
		{"keygen", "--size", "20"},
		{"node", "extra"},
		{"node", "--port", "70000"},
		{"node", "--log-format", "xml"},
		{"node", "--log-level", "loud"},
		{"node", "--time-scale", "-1"},
		{"node", "--fanout", "sideways"},
		{"node", "--profile", "moon"},
		{"node", "--http", "nowhere"},
		{"node", "--expect-members", "-1"},
		{"node", "--ack-timeout", "0s"},
		{"node", "--heartbeat", "-1s"},
		{"node", "--interface", "eth0"},
		{"node", "--no-such-flag"},
	} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d (%s%s), want %d", args, code, out, errOut, ExitUsage)
			continue
		}
		if !strings.HasPrefix(errOut, "warp: ") || strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 {
			t.Errorf("%q: want one line starting with \"warp: \", got %q", args, errOut)
		}
	}
	if code, _, errOut := runCLI(t, map[string]string{"WARP_AWAIT_ZONES": "x"}, "publish", "k"); code != ExitUsage || !strings.Contains(errOut, "WARP_AWAIT_ZONES") {
		t.Errorf("bad WARP_AWAIT_ZONES: exit %d %q", code, errOut)
	}
}

func TestRevokeAndMembersCommands(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	code, out, errOut := runCLI(t, nil, "revoke", "--addr", c.srv.URL, "lease-1")
	if code != ExitOK || out != "lease lease-1 revoked\n" {
		t.Fatalf("revoke: exit %d %q %q", code, out, errOut)
	}
	if err := c.nodes["c"].Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, nil, "members", "--addr", c.srv.URL)
	if code != ExitOK {
		t.Fatalf("members: exit %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ZONE") {
		t.Fatalf("members table:\n%s", out)
	}
	for i, want := range [][]string{{"a", "a", "alive"}, {"b", "b", "alive"}, {"c", "c", "left"}} {
		f := strings.Fields(lines[i+1])
		if f[0] != want[0] || f[1] != want[1] || !strings.Contains(lines[i+1], " "+want[2]+" ") {
			t.Errorf("row %d %q, want %v", i, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[1], "a *") {
		t.Errorf("the node asked is not marked: %q", lines[1])
	}
	if !strings.Contains(lines[4], "3 member(s), 2 alive in 2 zone(s)") {
		t.Errorf("summary %q", lines[4])
	}
	code, out, _ = runCLI(t, nil, "members", "--addr", c.srv.URL, "--json")
	var resp membersResponse
	if code != ExitOK || json.Unmarshal([]byte(out), &resp) != nil || len(resp.Members) != 3 || resp.Self != "a" {
		t.Errorf("members --json: exit %d %s", code, out)
	}
}

func TestWatchCommand(t *testing.T) {
	c := newMemCluster(t, apiConfig{})
	for _, asJSON := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		outR, outW := io.Pipe()
		var errOut syncBuffer
		args := []string{"watch", "--addr", c.srv.URL, "--prefix", "user:"}
		if asJSON {
			args = append(args, "--json")
		}
		done := make(chan int, 1)
		go func() {
			done <- runCLICtx(ctx, nil, outW, &errOut, args...)
			outW.Close()
		}()
		eventually(t, 5*time.Second, func() bool { return strings.Contains(errOut.String(), "watching") },
			"watch did not start: %q", errOut.String())
		if err := c.nodes["b"].Publish(ctx, "user:77"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(outR).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if asJSON {
			var ev eventJSON
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Key != "user:77" || ev.Origin != "b" {
				t.Errorf("--json line %q: %v", line, err)
			}
		} else if !strings.Contains(line, "invalidate") || !strings.Contains(line, "user:77") || !strings.Contains(line, "from b (zone b)") {
			t.Errorf("line %q", line)
		}
		cancel() // Ctrl-C
		go io.Copy(io.Discard, outR)
		if code := <-done; code != ExitOK {
			t.Errorf("interrupted watch: exit %d (%s)", code, errOut.String())
		}
	}
}

func TestKeygen(t *testing.T) {
	for _, size := range []string{"16", "24", "32"} {
		code, out, _ := runCLI(t, nil, "keygen", "--size", size)
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
		if code != ExitOK || err != nil || size != map[int]string{16: "16", 24: "24", 32: "32"}[len(key)] {
			t.Fatalf("--size %s: exit %d %q", size, code, out)
		}
		keys, err := parseKeys([]byte(out))
		if err != nil || len(keys) != 1 || !bytes.Equal(keys[0], key) {
			t.Fatalf("keygen's output is not a key file: %v", err)
		}
	}
	_, a, _ := runCLI(t, nil, "keygen")
	_, b, _ := runCLI(t, nil, "keygen")
	if a == b {
		t.Fatal("two keygen runs printed the same key")
	}
}
