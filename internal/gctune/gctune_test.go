package gctune

import (
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	if got := Apply(); got != Percent {
		t.Errorf("Apply() without GOGC = %d, want %d", got, Percent)
	}
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("GC percent after Apply() = %d, want %d", got, Percent)
	}

	// With GOGC set the runtime applied it at start; Apply keeps what is in
	// effect.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if got := Apply(); got != 150 {
		t.Errorf("Apply() with GOGC=150 = %d, want 150", got)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GC percent after Apply() with GOGC=150 = %d, want it left at 150", got)
	}
}
