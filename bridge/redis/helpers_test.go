package redis_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/warpmesh/warp/bridge/bridgetest"
	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// redisServer is a redis-server child process on a free port of 127.0.0.1
// that a test can stop and start again on the same port.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts redis-server, or skips the test, saying so loudly, when
// the binary is missing (.ci/run installs it).
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Fprintln(os.Stderr, "SKIP: redis-server not found in PATH: the Redis bridge is NOT tested (apt-get install redis-server, as .ci/run does)")
		t.Skip("redis-server not found in PATH; install it (apt-get install redis-server) to test the Redis bridge")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{t: t, bin: bin, port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", s.t.TempDir(),
		"--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := goredis.NewClient(&goredis.Options{Addr: s.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// client returns a client of the server that retries quickly.
func (s *redisServer) client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: 2,
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		DialTimeout: time.Second})
}

// ownedBus is a bus with the client the test made for it: closing it
// closes both, so the leak check sees no client goroutine either.
type ownedBus struct {
	*redisbus.RedisBus
	client *goredis.Client
}

func (o *ownedBus) Close() error {
	err := o.RedisBus.Close()
	_ = o.client.Close()
	return err
}

var channels atomic.Int64

func newChannel() string { return fmt.Sprintf("warp:test:%d", channels.Add(1)) }

// cluster builds one bus per node on its own client, all on one new
// channel, and waits until each knows all the others.
func (s *redisServer) cluster(t testing.TB, nodes []bustest.Node, opts ...redisbus.Option) []*ownedBus {
	t.Helper()
	return s.clusterOn(t, newChannel(), nodes, opts...)
}

func (s *redisServer) clusterOn(t testing.TB, channel string, nodes []bustest.Node, opts ...redisbus.Option) []*ownedBus {
	t.Helper()
	buses := make([]*ownedBus, len(nodes))
	for i, n := range nodes {
		c := s.client()
		o := append([]redisbus.Option{redisbus.WithNodeName(n.Name), redisbus.WithZone(n.Zone), redisbus.WithRegion(n.Region),
			redisbus.WithPresenceInterval(200 * time.Millisecond)}, opts...)
		b := &ownedBus{RedisBus: redisbus.NewRedisBus(c, channel, o...), client: c}
		t.Cleanup(func() { _ = b.Close() })
		buses[i] = b
	}
	bridgetest.WaitMembers(t, 10*time.Second, buses)
	return buses
}

// eventually waits for cond with the module's shared helper.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	warptest.Eventually(t, timeout, cond, "%s", what)
}

// next receives one event from ch within 10s.
func next(t *testing.T, ch <-chan syncbus.Event, what string) syncbus.Event {
	t.Helper()
	return warptest.Next(t, ch, 10*time.Second, what)
}
