package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
)

// NATSBus is a syncbus.Bus over NATS core pub/sub. Its methods are those of
// the embedded *bridge.Core (Publish, the awaiting calls, the
// subscriptions, Relay, Members, Metrics, Health, WaitForMembers); see the
// package documentation for what travels where. It is safe for concurrent
// use.
type NATSBus struct {
	*bridge.Core
	link    *bridge.Link
	nc      *natsgo.Conn
	subject string
	inbox   string

	events, acks *natsgo.Subscription
	// readers hand the subscriptions' messages to the core; ready is
	// closed once the core exists.
	readers   [2]reader
	ready     chan struct{}
	status    chan natsgo.Status
	log       *slog.Logger
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closing   atomic.Bool
	closeOnce sync.Once
}

var (
	_ syncbus.Bus              = (*NATSBus)(nil)
	_ syncbus.PrefixSubscriber = (*NATSBus)(nil)
	_ syncbus.MemberLister     = (*NATSBus)(nil)
	_ syncbus.Relayer          = (*NATSBus)(nil)
	_ syncbus.AllSubscriber    = (*NATSBus)(nil)
	_ syncbus.MetricsReporter  = (*NATSBus)(nil)
)

// NewNATSBus returns a bus whose events travel on subject over nc, which
// must be connected (or reconnecting): the bus subscribes to subject and
// to a reply inbox of its own, announces itself, and is usable at once.
// Other nodes appear in Members within a broker round trip; WaitForMembers
// waits for them.
//
// A connection made with nats.NoEcho spares the echo of the node's own
// frames and carries one bus per subject (see the package documentation).
//
// NewNATSBus returns no error: when an option, nc or subject is bad (a
// second bus of subject on a NoEcho connection included), every call of
// the returned bus returns an error naming it (matching
// bridge.ErrBadOption), and Close returns nil. The bus never closes nc.
func NewNATSBus(nc *natsgo.Conn, subject string, opts ...Option) *NATSBus {
	o, cfg, err := apply(opts)
	if err == nil {
		err = checkArgs(nc, subject)
	}
	if err != nil {
		return &NATSBus{Core: bridge.Broken(err)}
	}
	if err := noEcho.claim(nc, subject); err != nil {
		return &NATSBus{Core: bridge.Broken(err)}
	}
	b := &NATSBus{nc: nc, subject: subject, inbox: nc.NewInbox(), ready: make(chan struct{}), log: cfg.Logger}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.status = nc.StatusChanged(natsgo.CONNECTED, natsgo.DISCONNECTED, natsgo.RECONNECTING, natsgo.CLOSED)
	// Subscribe before the core announces itself, so the answers to its
	// first announcement reach it; the readers hold the messages until
	// the core exists.
	if b.events, err = b.readers[0].subscribe(b, subject, b.inbox); err == nil {
		b.acks, err = b.readers[1].subscribe(b, b.inbox, "")
	}
	if err == nil && o.pendingMsgs != 0 {
		if err = b.events.SetPendingLimits(o.pendingMsgs, o.pendingBytes); err == nil {
			err = b.acks.SetPendingLimits(o.pendingMsgs, o.pendingBytes)
		}
	}
	if err != nil {
		close(b.ready) // no core: the readers drop what came
		b.teardown()
		return &NATSBus{Core: bridge.Broken(fmt.Errorf("nats: subscribing to %q: %w", subject, mapErr(err)))}
	}
	// The subscriptions are live once the server has them; a connection
	// that is down gets them back when nats.go reconnects.
	flushCtx, cancel := context.WithTimeout(b.ctx, cfg.SendTimeout)
	if err := nc.FlushWithContext(flushCtx); err != nil {
		cfg.Logger.Warn("nats: the server did not confirm the subscriptions yet; they are resent on reconnect", "subject", subject, "err", err)
	}
	cancel()
	b.Core, b.link = bridge.NewCore(cfg, &transport{b})
	if !nc.IsConnected() {
		b.link.Disconnected(nc.LastError())
	}
	close(b.ready)
	b.wg.Add(1)
	go b.watch()
	return b
}

// Subject returns the subject the bus's events travel on.
func (b *NATSBus) Subject() string { return b.subject }

// checkArgs refuses a missing connection and a subject one cannot publish
// to.
func checkArgs(nc *natsgo.Conn, subject string) error {
	if nc == nil {
		return &bridge.OptionError{Option: "nc", Value: nil, Err: errors.New("nil *nats.Conn")}
	}
	if subject == "" || strings.ContainsAny(subject, " \t\r\n*>") || strings.HasPrefix(subject, ".") ||
		strings.HasSuffix(subject, ".") || strings.Contains(subject, "..") {
		return &bridge.OptionError{Option: "subject", Value: fmt.Sprintf("%q", subject), Err: errors.New("not a NATS subject one can publish to")}
	}
	return nil
}

// reader hands the messages of one subscription to the core. nats.go
// calls it on the subscription's own goroutine, one message at a time: the
// message goes from the client's read loop to the core in one hop, as on
// any asynchronous subscription. A rise of the subscription's dropped
// count means nats.go dropped messages for a slow consumer: every
// subscription resyncs.
type reader struct {
	b *NATSBus
	// own is the reply subject of this bus's own frames, which the
	// server hands back on subject (unless the connection was made with
	// nats.NoEcho): they are dropped unopened.
	own     string
	dropped int           // the subscription's dropped count last seen
	stopped chan struct{} // closed when nats.go stopped calling
}

func (r *reader) subscribe(b *NATSBus, subject, own string) (*natsgo.Subscription, error) {
	r.b, r.own, r.stopped = b, own, make(chan struct{})
	sub, err := b.nc.Subscribe(subject, r.onMsg)
	if err != nil {
		close(r.stopped)
		return nil, err
	}
	sub.SetClosedHandler(func(string) { close(r.stopped) })
	if !sub.IsValid() {
		// Closed before the handler was set (the connection closed): the
		// goroutine delivers nothing more.
		close(r.stopped)
	}
	return sub, nil
}

func (r *reader) onMsg(msg *natsgo.Msg) {
	<-r.b.ready
	if r.b.link == nil {
		return
	}
	if n, _ := msg.Sub.Dropped(); n > r.dropped {
		r.dropped = n
		r.b.link.Lost("slow-consumer")
	}
	if r.own != "" && msg.Reply == r.own {
		return // delivered here when published
	}
	r.b.link.Receive(msg.Data, msg.Reply)
}

// watch follows the connection's status: nats.go reconnects and resends
// the subscriptions by itself; the bus resyncs once it is back, and gives
// up when the connection is closed for good.
func (b *NATSBus) watch() {
	defer b.wg.Done()
	down := false
	for {
		select {
		case <-b.ctx.Done():
			return
		case st, ok := <-b.status:
			if !ok {
				return
			}
			switch st {
			case natsgo.DISCONNECTED, natsgo.RECONNECTING:
				if !down {
					down = true
					b.link.Disconnected(b.nc.LastError())
				}
			case natsgo.CONNECTED:
				if down {
					down = false
					b.link.Reconnected()
				}
			case natsgo.CLOSED:
				if !b.closing.Load() {
					b.link.Failed(natsgo.ErrConnectionClosed)
				}
				return
			}
		}
	}
}

// Close announces the node's departure, stops the bus's goroutines,
// unsubscribes and closes every subscription channel; it does not close
// the connection. A second call returns nil.
func (b *NATSBus) Close() error {
	if b.nc == nil {
		return nil // built with a bad option: nothing runs
	}
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		_ = b.Core.Close()
		if b.nc.IsConnected() {
			// Let the departure and the last events leave before the
			// caller closes the connection.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = b.nc.FlushWithContext(ctx)
			cancel()
		}
		b.teardown()
		b.wg.Wait()
	})
	return nil
}

// teardown stops what the constructor started on the connection.
func (b *NATSBus) teardown() {
	b.cancel()
	noEcho.release(b.nc, b.subject)
	for _, s := range []*natsgo.Subscription{b.events, b.acks} {
		if s != nil {
			_ = s.Unsubscribe()
		}
	}
	if b.status != nil {
		b.nc.RemoveStatusListener(b.status)
	}
	// nats.go ends a subscription's goroutine once it is unsubscribed or
	// the connection closed; the bound only guards against a handler
	// that never returns.
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for _, r := range b.readers {
		if r.stopped == nil {
			continue
		}
		select {
		case <-r.stopped:
		case <-deadline.C:
			b.log.Warn("nats: a subscription's delivery goroutine did not stop within 5s", "subject", b.subject)
			return
		}
	}
}

// noEcho refuses a second bus of one subject on a connection made with
// nats.NoEcho: the server hands such a connection none of its own
// messages, so the two would never hear each other.
var noEcho = noEchoClaims{m: make(map[noEchoKey]struct{})}

type noEchoKey struct {
	nc      *natsgo.Conn
	subject string
}

type noEchoClaims struct {
	mu sync.Mutex
	m  map[noEchoKey]struct{}
}

func (c *noEchoClaims) claim(nc *natsgo.Conn, subject string) error {
	if !nc.Opts.NoEcho {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := noEchoKey{nc, subject}
	if _, taken := c.m[k]; taken {
		return &bridge.OptionError{Option: "nc", Value: fmt.Sprintf("%q", subject),
			Err: errors.New("the connection, made with nats.NoEcho, already carries a bus of this subject: the two would never hear each other; give each its own connection")}
	}
	c.m[k] = struct{}{}
	return nil
}

func (c *noEchoClaims) release(nc *natsgo.Conn, subject string) {
	if !nc.Opts.NoEcho {
		return
	}
	c.mu.Lock()
	delete(c.m, noEchoKey{nc, subject})
	c.mu.Unlock()
}

// transport publishes frames on the subject with the bus's inbox as reply
// subject, and acks to the inbox a frame came with.
type transport struct{ b *NATSBus }

func (t *transport) Publish(_ context.Context, frames [][]byte) error {
	for _, f := range frames {
		// nats.go copies the data into its buffer (or, while reconnecting,
		// its reconnect buffer) and returns.
		if err := t.b.nc.PublishMsg(&natsgo.Msg{Subject: t.b.subject, Reply: t.b.inbox, Data: f}); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// NonBlocking reports that Ack only buffers: nats.go publishes
// asynchronously, so the bus acknowledges from its receiving goroutine.
func (t *transport) NonBlocking() bool { return true }

func (t *transport) Ack(_ context.Context, origin, reply string, frame []byte) error {
	if reply == "" {
		return fmt.Errorf("nats: events from %q came without a reply subject", origin)
	}
	return mapErr(t.b.nc.Publish(reply, frame))
}

// mapErr maps the client's errors to syncbus's sentinels at the package
// boundary, keeping the original wrapped.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, natsgo.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", bridge.ErrUnavailable, err)
	}
	return err
}
