package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	natsbus "github.com/warpmesh/warp/bridge/nats"
)

// natsSubject is the subject of the raw client's rows.
const natsSubject = "warp.bench.raw"

// natsRaw is NATS core with the raw client: a publisher connection and
// four subscriber connections. A subscriber answers a message that asks
// for a reply (a request) after storing its key: the raw client's
// PublishAndAwait(4) is a request answered by 4 replies.
type natsRaw struct {
	keys    *keySet
	pub     *natsgo.Conn
	subs    []*natsgo.Conn
	recv    []*receiver
	inbox   string
	replies chan *natsgo.Msg
}

func startNATSRaw(url string, keys *keySet) (*natsRaw, error) {
	t := &natsRaw{keys: keys, replies: make(chan *natsgo.Msg, 64)}
	var err error
	if t.pub, err = natsgo.Connect(url, natsgo.Name("bench-pub"), natsgo.NoReconnect()); err != nil {
		return nil, err
	}
	t.inbox = t.pub.NewInbox()
	if _, err := t.pub.ChanSubscribe(t.inbox, t.replies); err != nil {
		t.close()
		return nil, err
	}
	for i := range 4 {
		nc, err := natsgo.Connect(url, natsgo.Name(fmt.Sprintf("bench-sub-%d", i)), natsgo.NoReconnect())
		if err != nil {
			t.close()
			return nil, err
		}
		t.subs = append(t.subs, nc)
		rc := newReceiver()
		t.recv = append(t.recv, rc)
		if _, err := nc.Subscribe(natsSubject, func(m *natsgo.Msg) {
			rc.deliver(string(m.Data))
			if m.Reply != "" {
				_ = m.Respond(m.Data)
			}
		}); err != nil {
			t.close()
			return nil, err
		}
	}
	for _, nc := range append([]*natsgo.Conn{t.pub}, t.subs...) {
		if err := nc.FlushTimeout(opTimeout); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

func (t *natsRaw) info() targetInfo {
	return targetInfo{
		eventual: "publish, until 4 subscriber connections have it",
		await:    "request, until 4 replies are back",
		floods:   true,
		cpuScope: "this process: the embedded nats-server, 5 client connections and the harness",
	}
}

func (t *natsRaw) receivers() []*receiver { return t.recv }

func (t *natsRaw) publish(_ context.Context, i int) error {
	return t.pub.Publish(natsSubject, t.keys.bytes(i))
}

func (t *natsRaw) await(ctx context.Context, i int) error {
	key := t.keys.bytes(i)
	if err := t.pub.PublishRequest(natsSubject, t.inbox, key); err != nil {
		return err
	}
	return awaitAnswers(ctx, t.replies, "replies", func(m *natsgo.Msg) bool { return bytes.Equal(m.Data, key) })
}

func (t *natsRaw) topology(context.Context, int) error { return errNotApplicable }

func (t *natsRaw) flood(ctx context.Context, from, n int) (int, error) {
	for i := from; i < from+n; i++ {
		if err := t.pub.Publish(natsSubject, t.keys.bytes(i)); err != nil {
			return 0, err
		}
	}
	return 0, t.pub.FlushWithContext(ctx)
}

func (t *natsRaw) traffic() traffic {
	st := t.pub.Stats()
	return traffic{bytes: st.OutBytes, msgs: st.OutMsgs}
}

func (t *natsRaw) shrink(context.Context) error {
	for _, nc := range t.subs[2:] {
		nc.Close()
	}
	return nil
}

func (t *natsRaw) extraCPU() time.Duration { return 0 }

func (t *natsRaw) close() {
	if t.pub != nil {
		t.pub.Close()
	}
	for _, nc := range t.subs {
		nc.Close()
	}
}

// startNATSBridge builds five NATS bridge nodes, each on a connection of
// its own made with nats.NoEcho, as package bridge/nats recommends for a
// connection that carries one bus.
func startNATSBridge(ctx context.Context, url string, keys *keySet) (*bridgeTarget, error) {
	secret := bridgeSecret()
	return startBridge(ctx, keys, "this process: the embedded nats-server, the 5 nodes and the harness",
		func(name, zone string) (*bridgeNode, error) {
			nc, err := natsgo.Connect(url, natsgo.Name(name), natsgo.NoReconnect(), natsgo.NoEcho())
			if err != nil {
				return nil, err
			}
			b := natsbus.NewNATSBus(nc, "warp.bench.bridge", natsbus.WithNodeName(name), natsbus.WithZone(zone),
				natsbus.WithRegion("r1"), natsbus.WithSecretKeys(secret), natsbus.WithLabel("warp-bench"))
			return &bridgeNode{bus: b, close: nc.Close}, nil
		})
}

func (r *runner) runNATS(ctx context.Context, rep *Report, want func(string) bool) {
	r.progress("nats: starting an embedded nats-server")
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err == nil {
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			err = fmt.Errorf("the embedded nats-server was not ready within 10s")
		}
	}
	if err != nil {
		for _, id := range []string{NATS, NATSBridge} {
			if want(id) {
				s := &System{ID: id, Name: systemNames[id]}
				s.fail("start nats-server", err)
				rep.add(s)
			}
		}
		if srv != nil {
			srv.Shutdown()
		}
		return
	}
	defer func() {
		r.progress("nats: stopping the server")
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	rep.Servers["nats-server"] = server.VERSION + " (embedded, in this process)"
	url := srv.ClientURL()
	if want(NATS) {
		s := &System{ID: NATS, Name: systemNames[NATS]}
		rep.add(s)
		if t, err := startNATSRaw(url, r.keys); err != nil {
			s.fail("start", err)
		} else {
			r.measure(ctx, s, t)
			t.close()
			s.noteSlowConsumers(srv)
		}
	}
	if want(NATSBridge) {
		s := &System{ID: NATSBridge, Name: systemNames[NATSBridge]}
		rep.add(s)
		r.progress("nats-bridge: starting 5 nodes")
		sctx, cancel := r.bound(ctx, r.sz.setup)
		t, err := startNATSBridge(sctx, url, r.keys)
		cancel()
		if err != nil {
			s.fail("start", err)
			return
		}
		r.measure(ctx, s, t)
		t.close()
	}
}

// noteSlowConsumers notes the server's count of slow consumers, if any.
func (s *System) noteSlowConsumers(srv *server.Server) {
	if v, err := srv.Varz(nil); err == nil && v.SlowConsumers > 0 {
		s.note("nats-server counted %d slow consumers", v.SlowConsumers)
	}
}
