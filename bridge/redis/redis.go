package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
)

// DefaultPingInterval is how long the subscription may stay silent before
// the bus checks the connection with a PING.
const DefaultPingInterval = time.Second

// RedisBus is a syncbus.Bus over Redis pub/sub. Its methods are those of
// the embedded *bridge.Core (Publish, the awaiting calls, the
// subscriptions, Relay, Members, Metrics, Health, WaitForMembers); see the
// package documentation for what travels where. It is safe for concurrent
// use.
type RedisBus struct {
	*bridge.Core
	link    *bridge.Link
	client  *goredis.Client
	channel string
	ackCh   string // this node's acknowledgement channel
	ping    time.Duration

	ps        *goredis.PubSub
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ syncbus.Bus              = (*RedisBus)(nil)
	_ syncbus.PrefixSubscriber = (*RedisBus)(nil)
	_ syncbus.MemberLister     = (*RedisBus)(nil)
	_ syncbus.Relayer          = (*RedisBus)(nil)
	_ syncbus.AllSubscriber    = (*RedisBus)(nil)
	_ syncbus.MetricsReporter  = (*RedisBus)(nil)
)

// AckChannel returns the channel on which the node named node of the bus on
// channel receives acknowledgements: channel + "/ack/" + node. Redis channel
// names are binary-safe, so any node name works.
func AckChannel(channel, node string) string { return channel + "/ack/" + node }

// NewRedisBus returns a bus whose events travel on channel through client:
// the bus subscribes to channel and to its own acknowledgement channel
// (AckChannel) on one pub/sub connection of client's, waits (bounded) for
// Redis to confirm both, announces itself, and is usable at once. Other
// nodes appear in Members within a round trip; WaitForMembers waits for
// them.
//
// NewRedisBus returns no error: when an option, client or channel is bad,
// every call of the returned bus returns an error naming it (matching
// bridge.ErrBadOption), and Close returns nil. The bus never closes client.
func NewRedisBus(client *goredis.Client, channel string, opts ...Option) *RedisBus {
	o, cfg, err := apply(opts)
	if err == nil && client == nil {
		err = &bridge.OptionError{Option: "client", Value: nil, Err: errors.New("nil *redis.Client")}
	}
	if err == nil && channel == "" {
		err = &bridge.OptionError{Option: "channel", Value: `""`, Err: errors.New("empty channel name")}
	}
	if err != nil {
		return &RedisBus{Core: bridge.Broken(err)}
	}
	b := &RedisBus{client: client, channel: channel, ackCh: AckChannel(channel, cfg.NodeName), ping: o.pingInterval}
	if b.ping == 0 {
		b.ping = DefaultPingInterval
	}
	b.ping = time.Duration(float64(b.ping) * cfg.TimeScale)
	b.ctx, b.cancel = context.WithCancel(context.Background())

	// Subscribe before the core announces itself, so the answers to its
	// first announcement reach it. Messages that arrive before both
	// confirmations are kept for the core.
	b.ps = client.Subscribe(b.ctx, channel, b.ackCh)
	var early [][]byte
	confirmed := 0
	deadline := time.Now().Add(cfg.SendTimeout)
	var subErr error
	for confirmed < 2 && time.Now().Before(deadline) {
		msg, err := b.ps.ReceiveTimeout(b.ctx, time.Until(deadline))
		if err != nil {
			subErr = err
			break
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				confirmed++
			}
		case *goredis.Message:
			early = append(early, []byte(m.Payload))
		}
	}
	b.Core, b.link = bridge.NewCore(cfg, &transport{b})
	if confirmed < 2 {
		// Redis is unreachable now: the reader keeps trying, and the first
		// confirmation counts as a reconnection.
		b.link.Disconnected(fmt.Errorf("redis: subscribing to %q: %w", channel, subErr))
	}
	for _, m := range early {
		b.link.Receive(m, "")
	}
	b.wg.Add(1)
	go b.read(confirmed < 2)
	return b
}

// read hands every message to the core until Close. go-redis reconnects
// the pub/sub connection (and subscribes again) on the next receive after
// an error; the confirmation of the bus's channel on a new connection is
// the moment the bus is back, and every subscription resyncs. A silent
// connection is checked with a PING.
func (b *RedisBus) read(down bool) {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		msg, err := b.ps.ReceiveTimeout(b.ctx, b.ping)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				// Silence: ask for a PONG. A dead connection fails the
				// next receive, which reconnects.
				if err := b.ps.Ping(b.ctx); err != nil && !down {
					down = true
					b.link.Disconnected(err)
				}
				continue
			case errors.Is(err, goredis.ErrClosed):
				b.link.Failed(err)
				return
			}
			if !down {
				down = true
				b.link.Disconnected(err)
			}
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *goredis.Message:
			if down {
				// A message on a new connection before its confirmation
				// cannot happen; be safe and count it back up anyway.
				down = false
				b.link.Reconnected()
			}
			b.link.Receive([]byte(m.Payload), "")
		case *goredis.Subscription:
			if m.Kind == "subscribe" && m.Channel == b.channel && down {
				down = false
				b.link.Reconnected()
			}
		}
	}
}

// Close announces the node's departure, stops the bus's goroutine, closes
// its pub/sub connection and every subscription channel; it does not
// close the client. A second call returns nil.
func (b *RedisBus) Close() error {
	if b.client == nil {
		return nil // built with a bad option: nothing runs
	}
	b.closeOnce.Do(func() {
		_ = b.Core.Close()
		b.cancel()
		_ = b.ps.Close()
		b.wg.Wait()
	})
	return nil
}

// transport publishes frames on the bus's channel (pipelined) and acks on
// the publisher's acknowledgement channel.
type transport struct{ b *RedisBus }

func (t *transport) Publish(ctx context.Context, frames [][]byte) error {
	if len(frames) == 1 {
		return mapErr(t.b.client.Publish(ctx, t.b.channel, frames[0]).Err())
	}
	_, err := t.b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, f := range frames {
			p.Publish(ctx, t.b.channel, f)
		}
		return nil
	})
	return mapErr(err)
}

// InlineAcks reports that the bus acknowledges from its receiving
// goroutine: one round trip to Redis, which an awaiting publisher would
// otherwise wait for behind a goroutine hop.
func (t *transport) InlineAcks() bool { return true }

func (t *transport) Ack(ctx context.Context, origin, _ string, frame []byte) error {
	return mapErr(t.b.client.Publish(ctx, AckChannel(t.b.channel, origin), frame).Err())
}

// mapErr maps the client's errors to syncbus's sentinels at the package
// boundary, keeping the original wrapped.
func mapErr(err error) error {
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("%w: %w", bridge.ErrUnavailable, err)
	}
	return err
}
