package window_test

import (
	"testing"

	"github.com/airlock-dev/airlock/internal/window"
)

// BenchmarkDecide measures the gate's work inside a promotion's write
// transaction: the example windows, during the freeze (the slow path that
// searches for the next opening), a dense deny rule that never opens, a
// rule counted from 2000, and a rule with no start at all.
func BenchmarkDecide(b *testing.B) {
	dense := with(freeze, func(s *window.Spec) {
		s.RRule = "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,15,30,45"
		s.Duration = "20m"
	})
	counted := with(nightly, func(s *window.Spec) { s.RRule = "FREQ=DAILY;COUNT=100000;BYHOUR=2;BYMINUTE=30" })
	// never has no start at all: rrule-go searches until its clock reaches
	// the year 9999, which Between keeps to less than 400 years.
	never := with(freeze, func(s *window.Spec) { s.RRule = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30" })
	for _, bc := range []struct {
		name string
		ws   []window.Window
	}{
		{"business-hours-and-freeze", []window.Window{business, freeze}},
		{"dense-deny", []window.Window{dense}},
		{"count-from-2000", []window.Window{counted}},
		{"never-starts", []window.Window{never}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := at("2026-12-23T10:00:00+01:00")
			for b.Loop() {
				if _, err := window.Decide(bc.ws, "shop", "prod", t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
