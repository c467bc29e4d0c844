package window_test

import (
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/window"
)

// FuzzParseRule checks that any rule either is rejected or yields starts in
// order, inside the asked range, without panicking.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH;BYHOUR=9;BYMINUTE=0",
		"FREQ=MONTHLY;BYMONTH=12;BYMONTHDAY=20;BYHOUR=0;BYMINUTE=0",
		"FREQ=MONTHLY;BYDAY=-1FR,1MO;INTERVAL=2",
		"FREQ=DAILY;COUNT=3;BYHOUR=2;BYMINUTE=30",
		"RRULE:FREQ=DAILY;UNTIL=20261231T235959Z;BYMONTHDAY=-1",
		"FREQ=WEEKLY;WKST=MO",
		"FREQ=DAILY;BYHOUR=2,3;BYMINUTE=0,30",
	} {
		f.Add(s)
	}
	loc := mustZone("Europe/Stockholm")
	dt := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := window.ParseRule(s)
		if err != nil {
			return
		}
		var last time.Time
		n := 0
		r.Between(dt, from, to, func(s time.Time) bool {
			if s.Before(from) || !s.Before(to) || s.Before(last) {
				t.Fatalf("%q: start %s out of order or range (after %s)", s, s, last)
			}
			last = s
			n++
			return n < 10000
		})
	})
}
