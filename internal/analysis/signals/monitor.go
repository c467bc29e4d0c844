package signals

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Clock is the time source of a Monitor. signalstest.Clock is a fake.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultHistory is how many probe results a Monitor keeps.
const DefaultHistory = 100

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	Probe  *Probe // required
	Labels Labels // the candidate the probe's URL is rendered for
	// Clock defaults to SystemClock.
	Clock Clock
	// History bounds the results kept, oldest dropped first. Default 100.
	History int
	// Logger defaults to slog.Default(). Failures are logged at Warn.
	Logger *slog.Logger
	// OnResult, when set, is called after each result is recorded, on the
	// monitor's goroutine; it must not block for long.
	OnResult func(ProbeResult)
}

// MonitorState is a snapshot of a Monitor.
type MonitorState struct {
	Results             []ProbeResult // oldest first, at most History
	Runs                int           // probes run in total
	Failures            int           // failed probes in total
	ConsecutiveFailures int           // failures since the last success
}

// Last returns the newest result and false when there is none.
func (s MonitorState) Last() (ProbeResult, bool) {
	if len(s.Results) == 0 {
		return ProbeResult{}, false
	}
	return s.Results[len(s.Results)-1], true
}

// Monitor runs one probe on its interval: once at Start, then every
// Interval. State may be read at any time from any goroutine.
type Monitor struct {
	cfg MonitorConfig

	mu      sync.Mutex
	st      MonitorState
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

// NewMonitor validates cfg and returns a stopped monitor.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	if cfg.Probe == nil {
		return nil, &Error{Kind: KindConfig, Err: errors.New("monitor needs a probe")}
	}
	if cfg.History < 0 {
		return nil, &Error{Source: cfg.Probe.Name(), Kind: KindConfig, Err: errors.New("history must not be negative")}
	}
	if cfg.History == 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Monitor{cfg: cfg}, nil
}

// Start runs the probe once and then on its interval until ctx ends or
// Stop is called. It returns at once; a second Start is an error.
func (m *Monitor) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return &Error{Source: m.cfg.Probe.Name(), Kind: KindConfig, Err: errors.New("monitor already started")}
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go m.loop(ctx)
	return nil
}

// Stop stops the schedule and waits for a running probe to finish. It is
// safe to call more than once, and before Start.
func (m *Monitor) Stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (m *Monitor) loop(ctx context.Context) {
	defer close(m.done)
	for {
		m.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.cfg.Clock.After(m.cfg.Probe.Interval()):
		}
	}
}

// RunOnce runs the probe once, records the result and returns it. A probe
// cut short by ctx's cancellation is not recorded.
func (m *Monitor) RunOnce(ctx context.Context) ProbeResult {
	res := m.cfg.Probe.Run(ctx, m.cfg.Labels, m.cfg.Clock)
	if res.Kind == KindCanceled {
		return res
	}
	m.mu.Lock()
	m.st.Runs++
	if res.OK {
		m.st.ConsecutiveFailures = 0
	} else {
		m.st.Failures++
		m.st.ConsecutiveFailures++
	}
	m.st.Results = append(m.st.Results, res)
	if n := len(m.st.Results) - m.cfg.History; n > 0 {
		m.st.Results = append(m.st.Results[:0:0], m.st.Results[n:]...)
	}
	consecutive := m.st.ConsecutiveFailures
	m.mu.Unlock()
	if !res.OK {
		m.cfg.Logger.WarnContext(ctx, "synthetic probe failed",
			slog.String("probe", m.cfg.Probe.Name()), slog.String("url", res.URL),
			slog.String("kind", string(res.Kind)), slog.String("reason", res.Reason),
			slog.Int("consecutive_failures", consecutive))
	}
	if m.cfg.OnResult != nil {
		m.cfg.OnResult(res)
	}
	return res
}

// State returns a copy of the monitor's results and counts.
func (m *Monitor) State() MonitorState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Results = append([]ProbeResult(nil), m.st.Results...)
	return st
}
