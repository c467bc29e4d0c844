package window_test

import (
	"slices"
	"testing"
	"time"

	"github.com/teambition/rrule-go"

	"github.com/airlock-dev/airlock/internal/window"
)

// FuzzParseRule checks that any rule either is rejected or yields starts in
// increasing order, inside the asked range and not before dtstart, without
// panicking, in zones with unusual clock changes (Pacific/Apia skipped 30
// December 2011).
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH;BYHOUR=9;BYMINUTE=0",
		"FREQ=MONTHLY;BYMONTH=12;BYMONTHDAY=20;BYHOUR=0;BYMINUTE=0",
		"FREQ=MONTHLY;BYDAY=-1FR,1MO;INTERVAL=2",
		"FREQ=DAILY;COUNT=3;BYHOUR=2;BYMINUTE=30",
		"RRULE:FREQ=DAILY;UNTIL=20261231T235959Z;BYMONTHDAY=-1",
		"FREQ=WEEKLY;WKST=MO",
		"FREQ=DAILY;BYHOUR=2,3;BYMINUTE=0,30",
		"FREQ=YEARLY;BYWEEKNO=1,-1;BYDAY=MO;WKST=SU",
		"FREQ=YEARLY;BYYEARDAY=1,-1,100;INTERVAL=2",
		"FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU,20MO;BYHOUR=2;BYMINUTE=30",
		"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1,1;BYHOUR=9,17",
		"FREQ=MONTHLY;BYDAY=SU,1MO;BYMONTHDAY=1,2,3,4,5,6,7",
		"FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SU;WKST=SU;UNTIL=20260601",
	} {
		f.Add(s, uint8(0), uint16(9497))
	}
	f.Add("FREQ=DAILY;BYHOUR=0,12,23;BYMINUTE=30", uint8(4), uint16(4000)) // Apia, 2011
	f.Add("FREQ=DAILY;BYHOUR=0;BYMINUTE=0,30", uint8(3), uint16(9001))     // Santiago, 2026
	f.Add("FREQ=DAILY;BYHOUR=1,2;BYMINUTE=15,45", uint8(2), uint16(9003))  // Lord Howe, 2026
	zones := []*time.Location{mustZone("Europe/Stockholm"), mustZone("America/New_York"), mustZone("Australia/Lord_Howe"),
		mustZone("America/Santiago"), mustZone("Pacific/Apia"), time.UTC}
	f.Fuzz(func(t *testing.T, s string, zone uint8, days uint16) {
		r, err := window.ParseRule(s)
		if err != nil {
			return
		}
		loc := zones[int(zone)%len(zones)]
		dt := time.Date(2000, 1, 1, 0, 0, 0, 0, loc).AddDate(0, 0, int(days))
		from, to := time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2012, 3, 1, 0, 0, 0, 0, time.UTC)
		if days%2 == 1 {
			from, to = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		}
		var last time.Time
		n := 0
		r.Between(dt, from, to, func(st time.Time) bool {
			if st.Before(from) || !st.Before(to) || st.Before(dt) || (n > 0 && !st.After(last)) {
				t.Fatalf("%q in %s from %s: start %s out of order or range (after %s)", s, loc, dt, st, last)
			}
			last = st
			n++
			return n < 10000
		})
	})
}

// TestDaylightSaving checks the documented placement of starts around
// clock changes, west and east of UTC, in both hemispheres, with a
// half-hour change and with one at midnight: a start in the skipped time
// moves forward by the gap, a repeated one is the first of the two, and
// starts that fall together count once.
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, zone, rule, dtstart string
		want                      []string
	}{
		{"stockholm skips 02:00-03:00", "Europe/Stockholm", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "2026-03-28T00:00:00+01:00",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"stockholm repeats 02:00-03:00", "Europe/Stockholm", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "2026-10-24T00:00:00+02:00",
			[]string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"new york skips 02:00-03:00", "America/New_York", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "2026-03-07T00:00:00-05:00",
			[]string{"2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"new york repeats 01:00-02:00", "America/New_York", "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "2026-10-31T00:00:00-04:00",
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"lord howe skips half an hour", "Australia/Lord_Howe", "FREQ=DAILY;BYHOUR=2;BYMINUTE=15", "2026-10-03T00:00:00+10:30",
			[]string{"2026-10-03T02:15:00+10:30", "2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"lord howe repeats half an hour", "Australia/Lord_Howe", "FREQ=DAILY;BYHOUR=1;BYMINUTE=45", "2026-04-04T00:00:00+11:00",
			[]string{"2026-04-04T01:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"santiago skips midnight", "America/Santiago", "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "2026-09-05T00:00:00-04:00",
			[]string{"2026-09-05T00:00:00-04:00", "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
		{"two starts that fall together count once", "Europe/Stockholm", "FREQ=DAILY;COUNT=4;BYHOUR=2,3;BYMINUTE=30", "2026-03-28T00:00:00+01:00",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-28T03:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"starts moved by the gap stay in order", "Europe/Stockholm", "FREQ=DAILY;COUNT=2;BYHOUR=2,3;BYMINUTE=0,45", "2026-03-29T00:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-29T03:45:00+02:00"}},
		{"yearly on the night of the change", "America/New_York", "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU;BYHOUR=2;BYMINUTE=30", "2025-01-01T00:00:00-05:00",
			[]string{"2025-03-09T03:30:00-04:00", "2026-03-08T03:30:00-04:00", "2027-03-14T03:30:00-04:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := window.ParseRule(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			dt := at(tt.dtstart).In(mustZone(tt.zone))
			var got []string
			r.Between(dt, dt, dt.AddDate(3, 0, 0), func(s time.Time) bool {
				got = append(got, s.Format(time.RFC3339))
				return len(got) < len(tt.want)
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("starts\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestRRuleGoAloneMisplacesStarts records why rules are expanded on a
// floating clock and placed on the zone's clock afterwards: with DTSTART
// in the zone, rrule-go builds each start with time.Date, which reads a
// skipped 02:30 in New York as 01:30 EST, and in Santiago, whose clocks
// skip midnight, it finds two starts on 5 September and none on the 6th.
func TestRRuleGoAloneMisplacesStarts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		zone, rule, dtstart, from, to string
		want                          []string
	}{
		{"America/New_York", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "2026-03-01T00:00:00-05:00", "2026-03-07T12:00:00-05:00", "2026-03-09T12:00:00-04:00",
			[]string{"2026-03-08T01:30:00-05:00", "2026-03-09T02:30:00-04:00"}},
		{"America/Santiago", "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "2026-09-01T00:00:00-04:00", "2026-09-04T12:00:00-04:00", "2026-09-07T12:00:00-03:00",
			[]string{"2026-09-05T00:00:00-04:00", "2026-09-05T00:00:00-04:00", "2026-09-07T00:00:00-03:00"}},
	} {
		loc := mustZone(tt.zone)
		opt, err := rrule.StrToROptionInLocation(tt.rule, loc)
		if err != nil {
			t.Fatal(err)
		}
		opt.Dtstart = at(tt.dtstart).In(loc)
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range r.Between(at(tt.from), at(tt.to), true) {
			got = append(got, s.Format(time.RFC3339))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s in %s: rrule-go alone now gives %v, not %v; see whether wallClock is still needed", tt.rule, tt.zone, got, tt.want)
		}
	}
}
