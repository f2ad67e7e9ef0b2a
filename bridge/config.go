package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// Defaults of Config. BatchInterval, AckTimeout and the meaning of
// TimeScale are the mesh's (mesh.DefaultBatchInterval,
// mesh.DefaultAckTimeout, MeshOptions.TimeScale): the bridges may not
// import the mesh, so they repeat the values, and a test keeps them equal.
const (
	DefaultZone             = "default"
	DefaultBatchInterval    = 2 * time.Millisecond
	DefaultBatchSize        = 1024
	DefaultAckTimeout       = 5 * time.Second
	DefaultPresenceInterval = time.Second
	// DefaultSendTimeout bounds one send of frames to the broker.
	DefaultSendTimeout = 5 * time.Second
	// DefaultStallTimeout is the mesh's (mesh.DefaultStallTimeout).
	DefaultStallTimeout = time.Second
	// MaxBatchSize is the most events one frame carries.
	MaxBatchSize = wire.MaxEventsPerFrame
)

// Config is what a bridge bus is built from: the settings every bridge
// shares. The bridge packages fill it from their options; the zero value of
// every field means its default.
type Config struct {
	// NodeName is this node's unique name, the Origin of its events
	// (default: the host name plus a short random suffix, so two buses in
	// one process are two nodes).
	NodeName string
	// Zone and Region place the node in the topology (Zone defaults to
	// DefaultZone, Region to "").
	Zone, Region string
	// SecretKeys seal every frame: 16, 24 or 32 bytes each, the first one
	// primary. Empty means unauthenticated frames (with a checksum). Label
	// keeps clusters apart. Both mean what they mean for the mesh, so one
	// key file serves a mesh and its bridges.
	SecretKeys [][]byte
	Label      string
	// Logger receives the bus's logs (default: discard).
	Logger *slog.Logger
	// BatchInterval is the longest an event waits to share a frame with
	// others under load; an idle bus never waits (default 2ms).
	BatchInterval time.Duration
	// BatchSize is the most events one frame carries (default 1024, at most
	// MaxBatchSize); 1 sends every event in its own frame.
	BatchSize int
	// AckTimeout bounds awaiting calls whose ctx has no deadline
	// (default 5s).
	AckTimeout time.Duration
	// PresenceInterval is how often the node announces itself; a node not
	// heard for three of its intervals is taken as failed (default 1s).
	PresenceInterval time.Duration
	// SendTimeout bounds one send to the broker (default 5s).
	SendTimeout time.Duration
	// StallTimeout bounds how long this node's full prefix and all-events
	// subscriptions hold its deliveries and its own publishes before they
	// are let go, as the mesh's MeshOptions.StallTimeout (default 1s).
	StallTimeout time.Duration
	// TimeScale stretches every interval and timeout above alike, as the
	// mesh's does: 0 means 1, negative is an error.
	TimeScale float64
	// PrefixBuffer is the buffer of each prefix and all-events
	// subscription (default syncbus.DefaultPrefixBuffer).
	PrefixBuffer int
	// DedupeWindow is how many relayed event IDs the node remembers, to
	// deliver each relayed event once however many gateways relay it
	// (default syncbus.DefaultDedupeWindow). A node behind a busy gateway
	// wants it to cover a few seconds of relayed events.
	DedupeWindow int
	// Recorder receives latency measurements (default none).
	Recorder syncbus.Recorder
	// Quorum counts acknowledgements; the bridge packages set it (see
	// Quorum). It is required.
	Quorum Quorum
}

// Option changes a Config. An option that returns an error makes the bus
// unusable: every call of it returns that error.
type Option func(*Config) error

// WithNodeName sets the node's name.
func WithNodeName(name string) Option {
	return func(c *Config) error {
		if name == "" {
			return optionError("WithNodeName", name, errors.New("empty name"))
		}
		c.NodeName = name
		return nil
	}
}

// WithZone sets the node's availability zone.
func WithZone(zone string) Option {
	return func(c *Config) error { c.Zone = zone; return nil }
}

// WithRegion sets the node's region.
func WithRegion(region string) Option {
	return func(c *Config) error { c.Region = region; return nil }
}

// WithSecretKeys seals frames with keys, the first one primary.
func WithSecretKeys(keys ...[]byte) Option {
	return func(c *Config) error {
		for i, k := range keys {
			switch len(k) {
			case 16, 24, 32:
			default:
				return optionError("WithSecretKeys", fmt.Sprintf("key %d of %d bytes", i, len(k)), errors.New("want 16, 24 or 32 bytes"))
			}
		}
		c.SecretKeys = keys
		return nil
	}
}

// WithLabel sets the cluster label.
func WithLabel(label string) Option {
	return func(c *Config) error { c.Label = label; return nil }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *Config) error { c.Logger = l; return nil }
}

// WithBatchInterval sets the batch window.
func WithBatchInterval(d time.Duration) Option {
	return func(c *Config) error { c.BatchInterval = d; return nil }
}

// WithBatchSize sets the most events per frame; 1 turns batching off.
func WithBatchSize(n int) Option {
	return func(c *Config) error { c.BatchSize = n; return nil }
}

// WithAckTimeout sets the wait of awaiting calls without a deadline.
func WithAckTimeout(d time.Duration) Option {
	return func(c *Config) error { c.AckTimeout = d; return nil }
}

// WithPresenceInterval sets how often the node announces itself.
func WithPresenceInterval(d time.Duration) Option {
	return func(c *Config) error { c.PresenceInterval = d; return nil }
}

// WithSendTimeout bounds one send to the broker.
func WithSendTimeout(d time.Duration) Option {
	return func(c *Config) error { c.SendTimeout = d; return nil }
}

// WithStallTimeout bounds how long full subscriptions hold the node's
// deliveries and publishes (Config.StallTimeout).
func WithStallTimeout(d time.Duration) Option {
	return func(c *Config) error { c.StallTimeout = d; return nil }
}

// WithTimeScale stretches every interval and timeout.
func WithTimeScale(s float64) Option {
	return func(c *Config) error { c.TimeScale = s; return nil }
}

// WithPrefixBuffer sets the buffer of prefix and all-events subscriptions.
func WithPrefixBuffer(n int) Option {
	return func(c *Config) error { c.PrefixBuffer = n; return nil }
}

// WithDedupeWindow sets how many relayed event IDs the node remembers.
func WithDedupeWindow(n int) Option {
	return func(c *Config) error { c.DedupeWindow = n; return nil }
}

// WithRecorder sets the latency recorder.
func WithRecorder(r syncbus.Recorder) Option {
	return func(c *Config) error { c.Recorder = r; return nil }
}

// OptionError reports a bad option. Every call of a bus built with one
// returns it.
type OptionError struct {
	// Option names the option, as in "WithTimeScale".
	Option string
	// Value is the value given, for the message.
	Value any
	Err   error
}

func optionError(name string, value any, err error) *OptionError {
	return &OptionError{Option: name, Value: value, Err: err}
}

// Error names the option and says what is wrong with it.
func (e *OptionError) Error() string {
	return fmt.Sprintf("bridge: bad option %s(%v): %v", e.Option, e.Value, e.Err)
}

// Unwrap returns the reason.
func (e *OptionError) Unwrap() error { return e.Err }

// ErrBadOption is matched by every *OptionError.
var ErrBadOption = errors.New("bridge: bad option")

// Is reports whether target is ErrBadOption.
func (e *OptionError) Is(target error) bool { return target == ErrBadOption }

// Configure applies opts to a Config counting acknowledgements with q,
// fills in the defaults and scales the durations by TimeScale. A non-nil
// error names the first bad option; a bridge built on it returns that
// error from every call (see Broken).
func Configure(q Quorum, opts ...Option) (Config, error) {
	c := Config{Quorum: q}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, c.validate()
}

// validate fills in defaults, scales the durations and rejects nonsense.
// It names the option of the first bad field.
func (c *Config) validate() error {
	if c.Quorum == nil {
		return errors.New("bridge: Config.Quorum is required")
	}
	if len(c.NodeName) > wire.MaxNameLen {
		return optionError("WithNodeName", c.NodeName, fmt.Errorf("longer than %d bytes", wire.MaxNameLen))
	}
	if c.NodeName == "" {
		c.NodeName = DefaultNodeName()
	}
	if c.Zone == "" {
		c.Zone = DefaultZone
	}
	if len(c.Zone) > wire.MaxNameLen {
		return optionError("WithZone", c.Zone, fmt.Errorf("longer than %d bytes", wire.MaxNameLen))
	}
	if len(c.Region) > wire.MaxNameLen {
		return optionError("WithRegion", c.Region, fmt.Errorf("longer than %d bytes", wire.MaxNameLen))
	}
	for i, k := range c.SecretKeys {
		switch len(k) {
		case 16, 24, 32:
		default:
			return optionError("WithSecretKeys", fmt.Sprintf("key %d of %d bytes", i, len(k)), errors.New("want 16, 24 or 32 bytes"))
		}
	}
	switch {
	case math.IsNaN(c.TimeScale) || math.IsInf(c.TimeScale, 0) || c.TimeScale < 0:
		return optionError("WithTimeScale", c.TimeScale, errors.New("must be a finite number >= 0 (0 means 1)"))
	case c.TimeScale == 0:
		c.TimeScale = 1
	}
	dur := func(name string, d *time.Duration, def, limit time.Duration) error {
		switch {
		case *d == 0:
			*d = def
		case *d < 0 || (limit > 0 && *d > limit):
			if limit > 0 {
				return optionError(name, *d, fmt.Errorf("out of range (0..%v)", limit))
			}
			return optionError(name, *d, errors.New("must not be negative"))
		}
		*d = time.Duration(float64(*d) * c.TimeScale)
		return nil
	}
	if err := dur("WithBatchInterval", &c.BatchInterval, DefaultBatchInterval, time.Second); err != nil {
		return err
	}
	if err := dur("WithAckTimeout", &c.AckTimeout, DefaultAckTimeout, 0); err != nil {
		return err
	}
	if err := dur("WithPresenceInterval", &c.PresenceInterval, DefaultPresenceInterval, 0); err != nil {
		return err
	}
	if err := dur("WithSendTimeout", &c.SendTimeout, DefaultSendTimeout, 0); err != nil {
		return err
	}
	if err := dur("WithStallTimeout", &c.StallTimeout, DefaultStallTimeout, 0); err != nil {
		return err
	}
	switch {
	case c.BatchSize == 0:
		c.BatchSize = DefaultBatchSize
	case c.BatchSize < 0 || c.BatchSize > MaxBatchSize:
		return optionError("WithBatchSize", c.BatchSize, fmt.Errorf("out of range (1..%d)", MaxBatchSize))
	}
	switch {
	case c.PrefixBuffer == 0:
		c.PrefixBuffer = syncbus.DefaultPrefixBuffer
	case c.PrefixBuffer < 0 || c.PrefixBuffer > syncbus.MaxPrefixBuffer:
		return optionError("WithPrefixBuffer", c.PrefixBuffer, fmt.Errorf("out of range (1..%d)", syncbus.MaxPrefixBuffer))
	}
	switch {
	case c.DedupeWindow == 0:
		c.DedupeWindow = syncbus.DefaultDedupeWindow
	case c.DedupeWindow < 0 || c.DedupeWindow > 1<<24:
		return optionError("WithDedupeWindow", c.DedupeWindow, fmt.Errorf("out of range (1..%d)", 1<<24))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Recorder == nil {
		c.Recorder = syncbus.NopRecorder{}
	}
	return nil
}

// DefaultNodeName returns the host name plus a short random suffix: the
// default node name of every bridge bus, unique per bus instance.
func DefaultNodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	if len(host) > 200 {
		host = host[:200]
	}
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return host + "-" + hex.EncodeToString(b[:])
}
