package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestSustainedFuncMeasuresFromSchedule runs the pacer against an
// operation that takes 2 ms, and checks what the result says: every
// request ran once, no latency is shorter than the operation, and the
// pacer's lateness, which is part of each latency, is below the latency at
// the same percentile.
func TestSustainedFuncMeasuresFromSchedule(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, 1200)
	res, err := SustainedFunc(context.Background(), SustainedConfig{Rate: 2000, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Workers: 64},
		func(ctx context.Context, i int) error {
			calls.Add(1)
			seen[i].Store(true)
			time.Sleep(2 * time.Millisecond)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 1200 {
		t.Errorf("op ran %d times, want 1200 (warm-up 200 + measured 1000)", got)
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Fatalf("request %d never ran", i)
		}
	}
	if res.Count != 1000 || len(res.Latencies) != 1000 {
		t.Errorf("Count = %d, %d latencies; want 1000 measured requests", res.Count, len(res.Latencies))
	}
	for i, l := range res.Latencies {
		if l < 2*time.Millisecond {
			t.Fatalf("request %d: latency %v, shorter than the 2 ms the operation takes", i, l)
		}
	}
	if res.P50 < 2*time.Millisecond || res.P99 < res.P50 || res.Max < res.P999 {
		t.Errorf("percentiles out of order or below the operation's 2 ms: p50 %v p99 %v p999 %v max %v", res.P50, res.P99, res.P999, res.Max)
	}
	if res.PacerLateP99 <= 0 || res.PacerLateP99 > res.P99 {
		t.Errorf("pacer lateness p99 %v: want above zero and at most the latency p99 %v", res.PacerLateP99, res.P99)
	}
	if !res.Kept() {
		t.Errorf("a 2 ms operation with 64 workers keeps 2,000/s, but the result says not: %v", res)
	}
}
