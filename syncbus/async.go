package syncbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of AsyncConfig.
const (
	DefaultAsyncQueueSize      = 1024
	DefaultAsyncWorkers        = 2
	DefaultAsyncPublishTimeout = 5 * time.Second
	DefaultAsyncErrorBuffer    = 64
)

var (
	// ErrQueueFull is matched by the error reported on
	// AsyncPublisher.Errors for a publish refused because the queue was
	// full.
	ErrQueueFull = errors.New("syncbus: publish queue full")
	// ErrAbandoned is matched by the error reported for a queued publish
	// that was never attempted because Close gave up draining.
	ErrAbandoned = errors.New("syncbus: publish abandoned at close")
)

// PublishError reports one background publish that failed, naming its key.
// It unwraps to the cause: the bus's error, context.DeadlineExceeded when
// PublishTimeout passed, ErrQueueFull or ErrAbandoned.
type PublishError struct {
	Key string
	Err error
}

// Error names the key and the cause.
func (e *PublishError) Error() string {
	return fmt.Sprintf("syncbus: background publish of %q: %v", e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *PublishError) Unwrap() error { return e.Err }

// AsyncConfig configures an AsyncPublisher. Zero fields take their
// defaults; negative ones are an error.
type AsyncConfig struct {
	// QueueSize bounds the publishes waiting for a worker (default
	// DefaultAsyncQueueSize). A publish that finds it full is refused and
	// reported on Errors.
	QueueSize int
	// Workers is the fixed number of goroutines publishing from the queue
	// (default DefaultAsyncWorkers).
	Workers int
	// PublishTimeout bounds each background publish (default
	// DefaultAsyncPublishTimeout).
	PublishTimeout time.Duration
	// DrainTimeout bounds how long Close waits for the queue to drain
	// (default: PublishTimeout).
	DrainTimeout time.Duration
	// ErrorBuffer is the capacity of the Errors channel (default
	// DefaultAsyncErrorBuffer). Errors that find it full are counted and
	// dropped.
	ErrorBuffer int
	// Logger receives a warning when Close abandons publishes (nil
	// discards).
	Logger *slog.Logger
}

func (c *AsyncConfig) validate() error {
	fields := []struct {
		name string
		v    *int
		def  int
	}{
		{"QueueSize", &c.QueueSize, DefaultAsyncQueueSize},
		{"Workers", &c.Workers, DefaultAsyncWorkers},
		{"ErrorBuffer", &c.ErrorBuffer, DefaultAsyncErrorBuffer},
	}
	for _, f := range fields {
		switch {
		case *f.v < 0:
			return fmt.Errorf("syncbus: AsyncConfig.%s %d is negative", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	switch {
	case c.PublishTimeout < 0:
		return fmt.Errorf("syncbus: AsyncConfig.PublishTimeout %v is negative", c.PublishTimeout)
	case c.PublishTimeout == 0:
		c.PublishTimeout = DefaultAsyncPublishTimeout
	}
	switch {
	case c.DrainTimeout < 0:
		return fmt.Errorf("syncbus: AsyncConfig.DrainTimeout %v is negative", c.DrainTimeout)
	case c.DrainTimeout == 0:
		c.DrainTimeout = c.PublishTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// AsyncStats are an AsyncPublisher's counters.
type AsyncStats struct {
	// Queued counts publishes accepted into the queue.
	Queued uint64
	// Published counts background publishes the bus accepted.
	Published uint64
	// Failed counts background publishes that returned an error (timeouts
	// included).
	Failed uint64
	// Dropped counts publishes refused because the queue was full.
	Dropped uint64
	// Abandoned counts queued publishes never attempted because Close gave
	// up draining.
	Abandoned uint64
	// ErrorsDropped counts errors not reported because Errors was full.
	ErrorsDropped uint64
	// Pending is the number of publishes waiting in the queue.
	Pending int
}

type asyncJob struct {
	key  string
	opts []PublishOption
}

// AsyncPublisher publishes in the background, so a slow or unreachable
// bus never blocks the caller: Publish only queues, a fixed set of workers
// publishes each event within PublishTimeout, and every failure (bus error,
// timeout, full queue) is reported on Errors as a *PublishError naming the
// key. It is safe for concurrent use. Close stops its goroutines; it never
// closes the bus.
type AsyncPublisher struct {
	bus Bus
	cfg AsyncConfig

	// mu orders Publish (read lock) against Close (write lock), so nothing
	// is sent on the queue or on Errors after they are closed.
	mu     sync.RWMutex
	closed bool

	queue chan asyncJob
	errs  chan error
	// ctx is the parent of every background publish; cancelled when Close
	// gives up draining.
	ctx    context.Context
	cancel context.CancelFunc

	running     atomic.Int32  // workers still running
	workersDone chan struct{} // closed by the last worker to exit
	done        chan struct{} // closed once Close has finished

	queued, published, failed, dropped, abandoned, errsDropped atomic.Uint64
}

// NewAsyncPublisher starts cfg.Workers goroutines publishing on bus. It
// fails for a nil bus or a negative setting.
func NewAsyncPublisher(bus Bus, cfg AsyncConfig) (*AsyncPublisher, error) {
	if bus == nil {
		return nil, errors.New("syncbus: async publisher needs a bus")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &AsyncPublisher{
		bus:         bus,
		cfg:         cfg,
		queue:       make(chan asyncJob, cfg.QueueSize),
		errs:        make(chan error, cfg.ErrorBuffer),
		ctx:         ctx,
		cancel:      cancel,
		workersDone: make(chan struct{}),
		done:        make(chan struct{}),
	}
	p.running.Store(int32(cfg.Workers))
	for range cfg.Workers {
		go p.work()
	}
	return p, nil
}

// Publish queues an invalidation of key and returns at once: nil when it
// was queued or refused for a full queue (reported on Errors with
// ErrQueueFull), ErrInvalidKey for an empty key, ErrClosed after Close.
// The options are applied when the event is published.
func (p *AsyncPublisher) Publish(key string, opts ...PublishOption) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.queue <- asyncJob{key: key, opts: opts}:
		p.queued.Add(1)
	default:
		p.dropped.Add(1)
		p.report(&PublishError{Key: key, Err: ErrQueueFull})
	}
	return nil
}

// Errors returns the channel on which failures are reported, each a
// *PublishError. When nobody reads it and it is full, further errors are
// counted in AsyncStats.ErrorsDropped and dropped. It is closed once Close
// has finished.
func (p *AsyncPublisher) Errors() <-chan error { return p.errs }

// report hands err to Errors without blocking.
func (p *AsyncPublisher) report(err error) {
	select {
	case p.errs <- err:
	default:
		p.errsDropped.Add(1)
	}
}

// work is one worker: it publishes until the queue is closed and drained,
// or, once Close has given up, counts what remains as abandoned.
func (p *AsyncPublisher) work() {
	defer func() {
		if p.running.Add(-1) == 0 {
			close(p.workersDone)
		}
	}()
	for job := range p.queue {
		if p.ctx.Err() != nil {
			p.abandoned.Add(1)
			p.report(&PublishError{Key: job.key, Err: ErrAbandoned})
			continue
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.PublishTimeout)
		err := p.bus.Publish(ctx, job.key, job.opts...)
		cancel()
		if err != nil {
			p.failed.Add(1)
			p.report(&PublishError{Key: job.key, Err: err})
			continue
		}
		p.published.Add(1)
	}
}

// Close stops accepting publishes, drains the queue within
// cfg.DrainTimeout and stops the workers; see Shutdown.
func (p *AsyncPublisher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown stops accepting publishes (Publish returns ErrClosed) and waits
// for the queued ones to be published. If ctx ends first, it cancels the
// publishes in flight, abandons the queued ones (each reported on Errors
// with ErrAbandoned) and returns an error saying how many were abandoned
// that matches ctx's error. Either way every worker has exited and Errors
// is closed when it returns. Workers exit promptly only if the bus honours
// ctx cancellation. A second call waits for the first and returns nil.
func (p *AsyncPublisher) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	close(p.queue)
	p.mu.Unlock()

	var err error
	if !p.waitWorkers(ctx) {
		p.cancel()
		<-p.workersDone
		n := p.abandoned.Load()
		err = fmt.Errorf("syncbus: async publisher closed before draining, %d queued publishes abandoned: %w", n, ctx.Err())
		p.cfg.Logger.Warn("async publisher abandoned queued publishes", "abandoned", n)
	}
	p.cancel()
	close(p.errs)
	close(p.done)
	return err
}

// waitWorkers reports whether the workers finished before ctx ended; a
// drain that is already complete wins over an expired ctx.
func (p *AsyncPublisher) waitWorkers(ctx context.Context) bool {
	select {
	case <-p.workersDone:
		return true
	default:
	}
	select {
	case <-p.workersDone:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stats returns the counters.
func (p *AsyncPublisher) Stats() AsyncStats {
	return AsyncStats{
		Queued:        p.queued.Load(),
		Published:     p.published.Load(),
		Failed:        p.failed.Load(),
		Dropped:       p.dropped.Load(),
		Abandoned:     p.abandoned.Load(),
		ErrorsDropped: p.errsDropped.Load(),
		Pending:       len(p.queue),
	}
}
