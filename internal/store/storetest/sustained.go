package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/store"
)

// SustainedConfig describes an open-loop append run.
type SustainedConfig struct {
	// Rate is the offered load in creates per second.
	Rate float64
	// Duration is how long the load is offered for the measurement.
	Duration time.Duration
	// Warmup is offered at the same rate before the measurement starts and
	// is not counted (statement preparation, page cache, first checkpoint).
	Warmup time.Duration
	// Workers is how many requests may be in flight at once. A request
	// whose time has come while every worker is busy waits for one, and
	// that wait counts in its latency. Default 512.
	Workers int
}

// SustainedResult is what an open-loop run measured. Latencies run from the
// time each request was scheduled to be sent (not from when a worker got
// round to it) to the return of its Write, so a store that falls behind
// shows it in the tail instead of silently lowering the offered load.
type SustainedResult struct {
	Offered  float64 // creates/s offered
	Achieved float64 // creates/s completed: Count over the time from the first scheduled send to the last completion
	Count    int
	Errors   int
	Elapsed  time.Duration
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
	// PacerLateP99 is the 99th percentile of how late the pacer released
	// a request after its scheduled time. The lateness counts in the
	// request's latency: it is the load generator's own share, which the
	// runtime's timers put at up to about a millisecond here (they wake an
	// idle process only to the millisecond).
	PacerLateP99 time.Duration
	// Latencies holds every measured request's latency in the order the
	// requests were scheduled, one Interval apart.
	Latencies []time.Duration
	Interval  time.Duration
}

// Kept reports whether the store kept up with the offered load: every
// request succeeded and the completion rate was within 1% of the offered
// rate.
func (r SustainedResult) Kept() bool {
	return r.Errors == 0 && r.Count > 0 && r.Achieved >= 0.99*r.Offered
}

// String renders the result on one line.
func (r SustainedResult) String() string {
	return fmt.Sprintf("offered=%.0f/s achieved=%.0f/s n=%d errors=%d p50=%s p99=%s p999=%s max=%s pacer-late-p99=%s",
		r.Offered, r.Achieved, r.Count, r.Errors, ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max), ms(r.PacerLateP99))
}

// quantile returns the p-quantile of sorted, which must not be empty.
func quantile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// Sustained offers cfg.Rate creates per second to st for cfg.Warmup plus
// cfg.Duration: a pacing goroutine releases each request at its scheduled
// time to a pool of workers, each request one Write creating one Release
// (an object and its labels, and one audit entry). It returns once every
// request has completed. Only a setup failure is an error; failed writes are
// counted in the result.
func Sustained(ctx context.Context, st store.Store, cfg SustainedConfig) (SustainedResult, error) {
	prefix := fmt.Sprintf("s%x", rand.Uint32())
	return SustainedFunc(ctx, cfg, func(ctx context.Context, i int) error {
		obj := Obj("Release", fmt.Sprintf("%s-%d", prefix, i), map[string]string{"app": "shop"},
			`{"application":"shop","version":"1.4.2","digest":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`)
		return st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
			_, err := tx.Create(ctx, obj)
			return err
		})
	})
}

// SustainedFunc offers cfg.Rate calls of op per second, paced and measured
// as Sustained does; op gets each request's index.
func SustainedFunc(ctx context.Context, cfg SustainedConfig, op func(ctx context.Context, i int) error) (SustainedResult, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return SustainedResult{}, fmt.Errorf("sustained run needs a positive rate and duration, got %v/s for %v", cfg.Rate, cfg.Duration)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 512
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	warm := int(cfg.Warmup / interval)
	n := int(cfg.Duration / interval)
	total := warm + n

	type req struct {
		i     int
		sched time.Time
	}
	// The queue holds every request, so the pacer never blocks on slow
	// workers: their backlog shows as latency.
	queue := make(chan req, total)
	lat := make([]time.Duration, total)
	late := make([]time.Duration, total) // how long after its scheduled time the pacer released it
	done := make([]time.Time, total)
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range queue {
				err := op(ctx, r.i)
				now := time.Now()
				lat[r.i] = now.Sub(r.sched)
				done[r.i] = now
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}

	start := time.Now()
	for i := 0; i < total; {
		sched := start.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
		}
		// Release everything now due: a late wake-up issues the backlog at
		// once, keeping each request's scheduled time.
		now := time.Now()
		for ; i < total; i++ {
			sched := start.Add(time.Duration(i) * interval)
			if sched.After(now) {
				break
			}
			late[i] = now.Sub(sched)
			queue <- req{i: i, sched: sched}
		}
	}
	close(queue)
	wg.Wait()

	measured := lat[warm:]
	res := SustainedResult{
		Offered:   cfg.Rate,
		Count:     len(measured),
		Errors:    int(errs.Load()),
		Latencies: slices.Clone(measured),
		Interval:  interval,
	}
	measureStart := start.Add(time.Duration(warm) * interval)
	last := measureStart
	for _, t := range done[warm:] {
		if t.After(last) {
			last = t
		}
	}
	res.Elapsed = last.Sub(measureStart)
	// The last request is scheduled one interval before the end of the
	// run; count the run as lasting at least its nominal duration.
	res.Achieved = float64(res.Count) / max(res.Elapsed, time.Duration(n)*interval).Seconds()
	slices.Sort(measured)
	q := func(p float64) time.Duration { return quantile(measured, p) }
	res.P50, res.P99, res.P999, res.Max = q(0.50), q(0.99), q(0.999), measured[len(measured)-1]
	late = late[warm:]
	slices.Sort(late)
	res.PacerLateP99 = quantile(late, 0.99)
	if err, _ := firstErr.Load().(error); err != nil {
		return res, fmt.Errorf("%d of %d writes failed, the first with: %w", res.Errors, total, err)
	}
	return res, nil
}

// BenchSustained offers rate creates per second for dur (after a one-second
// warm-up) and reports the achieved rate and the latency percentiles, in ms,
// measured from each request's scheduled time. It runs once whatever b.N
// is; run it with -benchtime=1x. It fails when a write fails, not when the
// store falls behind: the figures say that.
func BenchSustained(b *testing.B, st store.Store, rate float64, dur time.Duration) {
	b.ResetTimer()
	res, err := Sustained(context.Background(), st, SustainedConfig{Rate: rate, Duration: dur, Warmup: time.Second})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.Log(res)
	b.ReportMetric(res.Achieved, "entries/s")
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(res.P999.Microseconds())/1000, "p999-ms")
	b.ReportMetric(float64(res.Max.Microseconds())/1000, "max-ms")
}
