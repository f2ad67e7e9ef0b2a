package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisbus "github.com/warpmesh/warp/bridge/redis"
)

// redisServer is a redis-server child process on a free port of
// 127.0.0.1, without persistence.
type redisServer struct {
	addr    string
	cmd     *exec.Cmd
	dir     string
	exited  chan struct{}
	version string
}

// errNoRedis says why the Redis rows are missing.
var errNoRedis = errors.New("redis-server is not on PATH: install it (Debian: apt-get install redis-server) to measure Redis pub/sub and the Redis bridge")

func startRedisServer(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "warp-bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--dir", dir, "--loglevel", "warning")
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, DialTimeout: time.Second})
	defer c.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := c.Info(pctx, "server").Result()
		cancel()
		if err == nil {
			for line := range strings.Lines(info) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					s.version = v
				}
			}
			return s, nil
		}
		select {
		case <-s.exited:
			s.stop()
			return nil, fmt.Errorf("redis-server exited at start (%v)", s.cmd.ProcessState)
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("redis-server did not answer: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// cpu returns the CPU time the server has used so far, or 0 where the
// system does not tell.
func (s *redisServer) cpu() time.Duration {
	d, _ := childCPU(s.cmd.Process.Pid)
	return d
}

// stop kills the server, waits for it and returns the CPU time it used in
// all (from its resource usage at exit).
func (s *redisServer) stop() time.Duration {
	_ = s.cmd.Process.Kill()
	<-s.exited
	_ = os.RemoveAll(s.dir)
	if ps := s.cmd.ProcessState; ps != nil {
		return ps.UserTime() + ps.SystemTime()
	}
	return 0
}

func (s *redisServer) client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: s.addr, DialTimeout: time.Second})
}

// Channels of the raw client's rows. A message whose payload starts with
// redisAskAck asks its receivers to publish its key on redisAckChannel
// once stored: the raw client's PublishAndAwait(4).
const (
	redisChannel    = "warp:bench:raw"
	redisAckChannel = "warp:bench:raw:ack"
	redisAskAck     = '?'
)

// redisRaw is Redis pub/sub with the raw client: a publisher client and
// four subscriber clients, each read by a goroutine of its own.
type redisRaw struct {
	srv     *redisServer
	keys    *keySet
	pub     *goredis.Client
	acks    *goredis.PubSub
	replies chan string
	subs    []*goredis.Client
	pss     []*goredis.PubSub
	recv    []*receiver
	wg      sync.WaitGroup
	sent    traffic
	buf     []byte
}

func startRedisRaw(ctx context.Context, srv *redisServer, keys *keySet) (*redisRaw, error) {
	t := &redisRaw{srv: srv, keys: keys, pub: srv.client(), replies: make(chan string, 64)}
	t.acks = t.pub.Subscribe(ctx, redisAckChannel)
	if _, err := t.acks.Receive(ctx); err != nil {
		t.close()
		return nil, err
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			m, err := t.acks.ReceiveMessage(context.Background())
			if err != nil {
				return // closed
			}
			select {
			case t.replies <- m.Payload:
			default: // nobody waits: a straggler
			}
		}
	}()
	for range 4 {
		c := srv.client()
		t.subs = append(t.subs, c)
		ps := c.Subscribe(ctx, redisChannel)
		t.pss = append(t.pss, ps)
		if _, err := ps.Receive(ctx); err != nil {
			t.close()
			return nil, err
		}
		rc := newReceiver()
		t.recv = append(t.recv, rc)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for {
				m, err := ps.ReceiveMessage(context.Background())
				if err != nil {
					return // closed
				}
				if key, ok := strings.CutPrefix(m.Payload, string(rune(redisAskAck))); ok {
					rc.deliver(key)
					_ = c.Publish(context.Background(), redisAckChannel, key).Err()
					continue
				}
				rc.deliver(m.Payload)
			}
		}()
	}
	return t, nil
}

func (t *redisRaw) info() targetInfo {
	return targetInfo{
		eventual: "PUBLISH, until 4 subscriber connections have it",
		await:    "PUBLISH, until 4 acks are back on an ack channel",
		floods:   true,
		cpuScope: "this process (5 clients and the harness) and the redis-server child (read from /proc on Linux)",
	}
}

func (t *redisRaw) receivers() []*receiver { return t.recv }

func (t *redisRaw) publish(ctx context.Context, i int) error {
	k := t.keys.bytes(i)
	t.sent.msgs++
	t.sent.bytes += uint64(len(k))
	return t.pub.Publish(ctx, redisChannel, k).Err()
}

func (t *redisRaw) await(ctx context.Context, i int) error {
	key := t.keys.key(i)
	t.buf = append(append(t.buf[:0], redisAskAck), key...)
	if err := t.pub.Publish(ctx, redisChannel, t.buf).Err(); err != nil {
		return err
	}
	return awaitAnswers(ctx, t.replies, "acks", func(k string) bool { return k == key })
}

func (t *redisRaw) topology(context.Context, int) error { return errNotApplicable }

// redisPipeline is how many PUBLISH commands the flood sends per round
// trip.
const redisPipeline = 1000

func (t *redisRaw) flood(ctx context.Context, from, n int) (int, error) {
	pipe := t.pub.Pipeline()
	for i := from; i < from+n; {
		end := min(i+redisPipeline, from+n)
		for ; i < end; i++ {
			k := t.keys.bytes(i)
			pipe.Publish(ctx, redisChannel, k)
			t.sent.msgs++
			t.sent.bytes += uint64(len(k))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func (t *redisRaw) traffic() traffic { return t.sent }

func (t *redisRaw) shrink(context.Context) error {
	for i := 2; i < len(t.pss); i++ {
		_ = t.pss[i].Close()
	}
	return nil
}

func (t *redisRaw) extraCPU() time.Duration { return t.srv.cpu() }

func (t *redisRaw) close() {
	if t.acks != nil {
		_ = t.acks.Close()
	}
	for _, ps := range t.pss {
		_ = ps.Close()
	}
	t.wg.Wait()
	_ = t.pub.Close()
	for _, c := range t.subs {
		_ = c.Close()
	}
}

func startRedisBridge(ctx context.Context, srv *redisServer, keys *keySet) (*bridgeTarget, error) {
	secret := bridgeSecret()
	t, err := startBridge(ctx, keys, "this process (the 5 nodes and the harness) and the redis-server child (read from /proc on Linux)",
		func(name, zone string) (*bridgeNode, error) {
			c := srv.client()
			b := redisbus.NewRedisBus(c, "warp:bench:bridge", redisbus.WithNodeName(name), redisbus.WithZone(zone),
				redisbus.WithRegion("r1"), redisbus.WithSecretKeys(secret), redisbus.WithLabel("warp-bench"))
			return &bridgeNode{bus: b, close: func() { _ = c.Close() }}, nil
		})
	if err != nil {
		return nil, err
	}
	t.extra = srv.cpu
	return t, nil
}

func (r *runner) runRedis(ctx context.Context, rep *Report, want func(string) bool) {
	r.progress("redis: starting a redis-server child process")
	sctx, cancel := r.bound(ctx, r.sz.setup)
	srv, err := startRedisServer(sctx)
	cancel()
	if err != nil {
		for _, id := range []string{Redis, RedisBridge} {
			if want(id) {
				s := &System{ID: id, Name: systemNames[id]}
				if errors.Is(err, errNoRedis) {
					s.Missing = err.Error()
				} else {
					s.fail("start redis-server", err)
				}
				rep.add(s)
			}
		}
		return
	}
	rep.Servers["redis-server"] = srv.version + " (child process)"
	var measured []*System
	defer func() {
		r.progress("redis: stopping the server")
		total := srv.stop()
		for _, s := range measured {
			s.note("redis-server used %.2f s of CPU over the whole Redis section (its resource usage at exit)", total.Seconds())
		}
	}()
	if want(Redis) {
		s := &System{ID: Redis, Name: systemNames[Redis]}
		rep.add(s)
		measured = append(measured, s)
		sctx, cancel := r.bound(ctx, r.sz.setup)
		t, err := startRedisRaw(sctx, srv, r.keys)
		cancel()
		if err != nil {
			s.fail("start", err)
		} else {
			r.measure(ctx, s, t)
			t.close()
		}
	}
	if want(RedisBridge) {
		s := &System{ID: RedisBridge, Name: systemNames[RedisBridge]}
		rep.add(s)
		measured = append(measured, s)
		r.progress("redis-bridge: starting 5 nodes")
		sctx, cancel := r.bound(ctx, r.sz.setup)
		t, err := startRedisBridge(sctx, srv, r.keys)
		cancel()
		if err != nil {
			s.fail("start", err)
			return
		}
		r.measure(ctx, s, t)
		t.close()
	}
}
