package api

import (
	"testing"
	"time"
)

func TestKeyLimiter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	l := newKeyLimiter(10, func() time.Time { return now })
	for i := range 20 {
		if ok, _ := l.allow("k"); !ok {
			t.Fatalf("request %d of the burst of 20 refused", i+1)
		}
	}
	ok, wait := l.allow("k")
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("21st: %v, retry after %s; want refused, 100ms", ok, wait)
	}
	if ok, _ := l.allow("other"); !ok {
		t.Fatal("another key was limited by the first")
	}
	now = now.Add(100 * time.Millisecond)
	if ok, _ := l.allow("k"); !ok {
		t.Fatal("a token did not come back after 100ms at 10/s")
	}
	if ok, _ := l.allow("k"); ok {
		t.Fatal("two tokens came back after 100ms at 10/s")
	}
}
