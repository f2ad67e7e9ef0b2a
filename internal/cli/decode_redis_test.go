package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisbus "github.com/warpmesh/warp/bridge/redis"
)

// TestDecodeRedisInterop: a frame the Redis bus publishes, captured by
// redis-cli (another client, not ours) from the channel, decodes with
// warp decode to the event published: the frames are the documented
// format, not a Go-only accident.
func TestDecodeRedisInterop(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Fprintln(os.Stderr, "SKIP: redis-server not found in PATH: the Redis interop of warp decode is NOT tested (apt-get install redis-server, as .ci/run does)")
		t.Skip("redis-server not found; install it (apt-get install redis-server)")
	}
	cliBin, err := exec.LookPath("redis-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, "SKIP: redis-cli not found in PATH: the Redis interop of warp decode is NOT tested")
		t.Skip("redis-cli not found; install redis-tools")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	srv := exec.Command(server, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + port})
	t.Cleanup(func() { _ = client.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for client.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// redis-cli subscribes and prints every message as a quoted string.
	const channel = "warp.interop"
	sub := exec.Command(cliBin, "-p", port, "--no-raw", "SUBSCRIBE", channel)
	stdout, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	nextLine := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("redis-cli exited while waiting for %s", what)
			}
			return line
		case <-time.After(10 * time.Second):
			t.Fatalf("redis-cli printed no %s within 10s", what)
		}
		return ""
	}
	for !strings.Contains(nextLine("subscription confirmation"), "(integer) 1") {
	}

	key := bytes.Repeat([]byte{5}, 32)
	bus := redisbus.NewRedisBus(client, channel, redisbus.WithNodeName("interop"), redisbus.WithZone("z1"),
		redisbus.WithSecretKeys(key), redisbus.WithLabel("prod"))
	t.Cleanup(func() { _ = bus.Close() })
	if err := bus.Publish(context.Background(), "user:interop\x00é"); err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "keys", []byte(base64.StdEncoding.EncodeToString(key)+"\n"))

	// Presence frames travel on the channel too: decode messages until the
	// event's frame.
	for {
		line := nextLine("message")
		if !strings.HasPrefix(line, `3) "`) {
			continue
		}
		quoted := strings.TrimPrefix(line, "3) ")
		code, out, errOut := runCLI(t, nil, "decode", "--key-file", keyFile, "--label", "prod", writeFile(t, "captured", []byte(quoted)))
		if code != ExitOK {
			t.Fatalf("warp decode of %q: exit %d: %s", quoted, code, errOut)
		}
		if !strings.Contains(out, "events:") {
			continue // a presence announcement
		}
		for _, want := range []string{`origin "interop"`, `zone "z1"`, `invalidate key "user:interop\x00é"`, "sealed true"} {
			if !strings.Contains(out, want) {
				t.Errorf("decoded frame lacks %q:\n%s", want, out)
			}
		}
		return
	}
}
