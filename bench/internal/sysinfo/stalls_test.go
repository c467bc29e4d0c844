package sysinfo

import (
	"strings"
	"testing"
	"time"
)

func TestMeasureStalls(t *testing.T) {
	s := MeasureStalls(50*time.Millisecond, 200*time.Microsecond)
	if s.CPUs < 1 || s.Duration != 50*time.Millisecond {
		t.Fatalf("%+v", s)
	}
	if s.Count > 0 && (s.Total < time.Duration(s.Count)*200*time.Microsecond || s.Max <= 200*time.Microsecond) {
		t.Errorf("inconsistent stalls: %+v", s)
	}
	if s.Total > time.Duration(s.CPUs)*50*time.Millisecond {
		t.Errorf("stalled longer than it spun: %+v", s)
	}
	if !strings.Contains(s.String(), "CPU stalls over 200µs") {
		t.Errorf("String() = %q", s.String())
	}
}

func TestStallsString(t *testing.T) {
	s := Stalls{CPUs: 2, Duration: time.Second, Threshold: 200 * time.Microsecond, Count: 3, Total: 20 * time.Millisecond, Max: 12340 * time.Microsecond}
	want := "CPU stalls over 200µs while spinning 1s on 2 CPUs: 3, 1.00% of the time, longest 12.34ms"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
