package signals

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/signals/signalstest"
)

// TestMonitorSchedule runs a probe on a fake clock against a candidate
// whose health the test switches, and checks the consecutive-failure
// count, the bounded history and the timestamps.
func TestMonitorSchedule(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	p, err := NewProbe(ProbeConfig{Name: "health", URL: s.URL, Interval: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := signalstest.NewClock(t0)
	results := make(chan ProbeResult, 16)
	m, err := NewMonitor(MonitorConfig{
		Probe: p, Clock: clock, History: 3,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnResult: func(r ProbeResult) { results <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("a second Start succeeded")
	}

	// health per run, and the consecutive failures expected after it.
	steps := []struct {
		healthy     bool
		consecutive int
	}{{false, 1}, {false, 2}, {false, 3}, {true, 0}, {false, 1}}
	for i, st := range steps {
		healthy.Store(st.healthy)
		if i > 0 {
			if !clock.BlockUntil(1) {
				t.Fatal("the monitor never went to sleep")
			}
			clock.Advance(10 * time.Second)
		}
		var r ProbeResult
		select {
		case r = <-results:
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d never happened", i)
		}
		if r.OK != st.healthy || !r.Time.Equal(t0.Add(time.Duration(i)*10*time.Second)) {
			t.Fatalf("run %d: %+v", i, r)
		}
		if got := m.State().ConsecutiveFailures; got != st.consecutive {
			t.Fatalf("run %d: %d consecutive failures, want %d", i, got, st.consecutive)
		}
	}
	m.Stop()
	st := m.State()
	if st.Runs != 5 || st.Failures != 4 || len(st.Results) != 3 {
		t.Fatalf("state: runs %d failures %d history %d", st.Runs, st.Failures, len(st.Results))
	}
	if !st.Results[0].Time.Equal(t0.Add(20*time.Second)) || st.Results[1].OK != true {
		t.Fatalf("history is not the newest three, oldest first: %+v", st.Results)
	}
	if last, ok := st.Last(); !ok || last.OK || last.Kind != KindStatus || last.Status != 500 {
		t.Fatalf("last %+v", last)
	}
	select {
	case r := <-results:
		t.Fatalf("a run after Stop: %+v", r)
	default:
	}
}

func TestMonitorUnresolvableHostCountsFailures(t *testing.T) {
	t.Parallel()
	p, err := NewProbe(ProbeConfig{Name: "dns", URL: "http://does-not-resolve.invalid/health", Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMonitor(MonitorConfig{Probe: p, Clock: signalstest.NewClock(t0), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		r := m.RunOnce(context.Background())
		if r.OK || r.Kind != KindDNS || r.Reason == "" {
			t.Fatalf("run %d: %+v", i, r)
		}
	}
	if st := m.State(); st.ConsecutiveFailures != 3 || st.Failures != 3 {
		t.Fatalf("state %+v", st)
	}
}

func TestMonitorStopBeforeStartAndCanceledRun(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(s.Close)
	p, err := NewProbe(ProbeConfig{Name: "slow", URL: s.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMonitor(MonitorConfig{Probe: p, Clock: signalstest.NewClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	m.Stop() // no effect before Start
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := m.RunOnce(ctx); r.Kind != KindCanceled {
		t.Fatalf("canceled run: %+v", r)
	}
	if st := m.State(); st.Runs != 0 {
		t.Fatalf("a canceled run was recorded: %+v", st)
	}
	if _, err := NewMonitor(MonitorConfig{}); KindOf(err) != KindConfig {
		t.Fatalf("NewMonitor without a probe: %v", err)
	}
}
