package local

import (
	"testing"
	"time"
)

func TestBackoffPolicyNext(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	p := BackoffPolicy{} // defaults: 1s doubling, 1m cap, reset after 30s healthy, 5 crashes
	tests := []struct {
		name string
		c    Crash
		want Decision
	}{
		{"first crash waits Initial", Crash{Before: 0, At: t0}, Decision{Crashes: 1, Delay: time.Second}},
		{"second doubles", Crash{Before: 1, At: t0}, Decision{Crashes: 2, Delay: 2 * time.Second}},
		{"fourth", Crash{Before: 3, At: t0}, Decision{Crashes: 4, Delay: 8 * time.Second}},
		{"fifth consecutive crash fails", Crash{Before: 4, At: t0}, Decision{Crashes: 5, Fail: true}},
		{"healthy briefly does not reset", Crash{Before: 3, HealthySince: t0.Add(-29 * time.Second), At: t0}, Decision{Crashes: 4, Delay: 8 * time.Second}},
		{"healthy long enough resets", Crash{Before: 4, HealthySince: t0.Add(-30 * time.Second), At: t0}, Decision{Crashes: 1, Delay: time.Second}},
	}
	for _, tt := range tests {
		if got := p.Next(tt.c); got != tt.want {
			t.Errorf("%s: Next(%+v) = %+v, want %+v", tt.name, tt.c, got, tt.want)
		}
	}
}

func TestBackoffPolicyCapsDelay(t *testing.T) {
	t.Parallel()
	p := BackoffPolicy{Initial: time.Second, Max: time.Minute, MaxCrashes: 100}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		got := p.Next(Crash{Before: i, At: time.Unix(0, 0)})
		if got.Fail || got.Delay != w*time.Second {
			t.Errorf("crash %d: %+v, want delay %v", i+1, got, w*time.Second)
		}
	}
}
