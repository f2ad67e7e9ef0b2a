package redis

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/syncbus"
)

// Option configures a RedisBus. NewRedisBus returns no error, so a bad option
// makes every call of the bus return an error that names it (matching
// bridge.ErrBadOption).
type Option func(*options) error

type options struct {
	core         []bridge.Option
	pingInterval time.Duration
}

func core(o bridge.Option) Option {
	return func(opts *options) error { opts.core = append(opts.core, o); return nil }
}

// WithNodeName sets the node's unique name (default: the host name plus a
// short random suffix, so two buses are two nodes).
func WithNodeName(name string) Option { return core(bridge.WithNodeName(name)) }

// WithZone sets the node's availability zone (default "default").
func WithZone(zone string) Option { return core(bridge.WithZone(zone)) }

// WithRegion sets the node's region, which its events carry (default "").
func WithRegion(region string) Option { return core(bridge.WithRegion(region)) }

// WithSecretKeys authenticates and encrypts every frame with keys (16, 24
// or 32 bytes each, the first one primary), as the mesh's
// MeshOptions.SecretKeys: one key file serves a mesh and its bridges.
func WithSecretKeys(keys ...[]byte) Option { return core(bridge.WithSecretKeys(keys...)) }

// WithLabel sets the cluster label (MeshOptions.Label): frames of another
// label are dropped.
func WithLabel(label string) Option { return core(bridge.WithLabel(label)) }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return core(bridge.WithLogger(l)) }

// WithBatchInterval sets the longest an event waits to share a message with
// others under load (default 2ms, the mesh's BatchInterval; at most 1s).
// An idle bus never waits.
func WithBatchInterval(d time.Duration) Option { return core(bridge.WithBatchInterval(d)) }

// WithBatchSize sets the most events one message carries (default 1024);
// 1 sends one message per event.
func WithBatchSize(n int) Option { return core(bridge.WithBatchSize(n)) }

// WithAckTimeout bounds PublishAndAwait and PublishAndAwaitTopology calls
// whose ctx has no deadline (default 5s).
func WithAckTimeout(d time.Duration) Option { return core(bridge.WithAckTimeout(d)) }

// WithSendTimeout bounds one send of frames to the broker (default 5s).
// A send that fails or times out is counted, and receivers resync for the
// events it held.
func WithSendTimeout(d time.Duration) Option { return core(bridge.WithSendTimeout(d)) }

// WithStallTimeout bounds how long the node's full prefix and all-events
// subscriptions hold its deliveries and its own publishes (default 1s, the
// mesh's StallTimeout): while one is full, the bus stops handing frames
// over and the broker client buffers them, so a burst its readers take
// more slowly than it arrives is delivered whole; a subscription that
// makes no room in time is let go and gets a resync.
func WithStallTimeout(d time.Duration) Option { return core(bridge.WithStallTimeout(d)) }

// WithPresenceInterval sets how often the node announces itself (default
// 1s); a node silent for three intervals counts as failed.
func WithPresenceInterval(d time.Duration) Option { return core(bridge.WithPresenceInterval(d)) }

// WithTimeScale stretches every interval and timeout of the bus alike, as
// MeshOptions.TimeScale: 0 means 1, negative is an error.
func WithTimeScale(s float64) Option { return core(bridge.WithTimeScale(s)) }

// WithPrefixBuffer sets the buffer of each prefix and all-events
// subscription (default syncbus.DefaultPrefixBuffer).
func WithPrefixBuffer(n int) Option { return core(bridge.WithPrefixBuffer(n)) }

// WithDedupeWindow sets how many relayed event IDs the node remembers
// (default syncbus.DefaultDedupeWindow): size it for a few seconds of the
// events gateways relay into the bus.
func WithDedupeWindow(n int) Option { return core(bridge.WithDedupeWindow(n)) }

// WithRecorder sets the recorder of ack latencies and delivery delays.
func WithRecorder(r syncbus.Recorder) Option { return core(bridge.WithRecorder(r)) }

// WithPingInterval sets how long the bus's subscription may stay silent
// before the bus pings Redis to check the connection (default 1s, times
// the time scale).
func WithPingInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return &bridge.OptionError{Option: "WithPingInterval", Value: d, Err: fmt.Errorf("must not be negative")}
		}
		o.pingInterval = d
		return nil
	}
}

// apply builds the options and the core's Config.
func apply(opts []Option) (options, bridge.Config, error) {
	var o options
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return o, bridge.Config{}, err
		}
	}
	cfg, err := bridge.Configure(zonesQuorum, o.core...)
	return o, cfg, err
}
