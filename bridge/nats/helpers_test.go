package nats_test

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	"github.com/warpmesh/warp/bridge/bridgetest"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// natsServer is an embedded nats-server on a free port of 127.0.0.1 that a
// test can stop and start again on the same port.
type natsServer struct {
	t    testing.TB
	port int
	srv  *server.Server
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startServer(t testing.TB) *natsServer {
	t.Helper()
	s := &natsServer{t: t, port: freePort(t)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) start() {
	s.t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: s.port, NoLog: true, NoSigs: true})
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats-server not ready")
	}
	s.srv = srv
}

func (s *natsServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// connect opens a client that reconnects quickly and forever.
func (s *natsServer) connect(t testing.TB, name string, extra ...natsgo.Option) *natsgo.Conn {
	t.Helper()
	opts := append([]natsgo.Option{natsgo.Name(name), natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(20 * time.Millisecond), natsgo.ReconnectJitter(0, 0)}, extra...)
	nc, err := natsgo.Connect(s.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// ownedBus is a bus with the connection the test made for it: closing it
// closes both, so the leak check sees no client goroutine either.
type ownedBus struct {
	*natsbus.NATSBus
	nc *natsgo.Conn
}

func (o *ownedBus) Close() error {
	err := o.NATSBus.Close()
	o.nc.Close()
	return err
}

var subjects atomic.Int64

// newSubject returns a subject no other cluster of this process uses.
func newSubject() string { return fmt.Sprintf("warp.test.%d", subjects.Add(1)) }

// cluster builds one bus per node on its own connection, all on one new
// subject, and waits until each knows all the others.
func (s *natsServer) cluster(t testing.TB, nodes []bustest.Node, opts ...natsbus.Option) []*ownedBus {
	t.Helper()
	return s.clusterOn(t, nodes, nil, opts...)
}

// clusterOn is cluster with connections made with conn's options too.
func (s *natsServer) clusterOn(t testing.TB, nodes []bustest.Node, conn []natsgo.Option, opts ...natsbus.Option) []*ownedBus {
	t.Helper()
	subject := newSubject()
	buses := make([]*ownedBus, len(nodes))
	for i, n := range nodes {
		nc := s.connect(t, n.Name, conn...)
		o := append([]natsbus.Option{natsbus.WithNodeName(n.Name), natsbus.WithZone(n.Zone), natsbus.WithRegion(n.Region),
			natsbus.WithPresenceInterval(200 * time.Millisecond)}, opts...)
		b := &ownedBus{NATSBus: natsbus.NewNATSBus(nc, subject, o...), nc: nc}
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
