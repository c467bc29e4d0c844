package window

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// genWideRule returns a rule that may use every part ParseRule takes; some
// combinations are refused, which the caller skips.
func genWideRule(rnd *rand.Rand) string {
	pick := func(vals []string, most int) string {
		var out []string
		for range 1 + rnd.IntN(most) {
			out = append(out, vals[rnd.IntN(len(vals))])
		}
		return strings.Join(out, ",")
	}
	freq := []string{"YEARLY", "MONTHLY", "WEEKLY", "DAILY"}[rnd.IntN(4)]
	parts := []string{"FREQ=" + freq}
	if rnd.IntN(2) == 0 {
		parts = append(parts, fmt.Sprintf("INTERVAL=%d", 1+rnd.IntN(7)))
	}
	switch rnd.IntN(5) {
	case 0:
		parts = append(parts, fmt.Sprintf("COUNT=%d", 1+rnd.IntN(40)))
	case 1:
		parts = append(parts, fmt.Sprintf("UNTIL=2027%02d%02d", 1+rnd.IntN(12), 1+rnd.IntN(28)))
	}
	if rnd.IntN(3) == 0 {
		parts = append(parts, "BYMONTH="+pick([]string{"1", "2", "3", "6", "10", "12"}, 3))
	}
	if freq == "YEARLY" && rnd.IntN(3) == 0 {
		parts = append(parts, "BYWEEKNO="+pick([]string{"1", "2", "20", "51", "-1", "-2", "-51"}, 2))
	}
	if freq == "YEARLY" && rnd.IntN(4) == 0 {
		parts = append(parts, "BYYEARDAY="+pick([]string{"1", "59", "60", "100", "365", "366", "-1", "-366"}, 3))
	}
	if freq != "WEEKLY" && rnd.IntN(3) == 0 {
		parts = append(parts, "BYMONTHDAY="+pick([]string{"1", "13", "29", "30", "31", "-1", "-3"}, 3))
	}
	if rnd.IntN(2) == 0 {
		days := []string{"MO", "TU", "WE", "TH", "FR", "SA", "SU"}
		switch {
		case freq == "MONTHLY" && rnd.IntN(2) == 0:
			days = append(days, "1MO", "-1FR", "2TU", "5SU", "-5SA")
		case freq == "YEARLY" && rnd.IntN(2) == 0:
			days = append(days, "1MO", "-1FR", "20MO", "53SU", "-53SA", "2TU")
		}
		parts = append(parts, "BYDAY="+pick(days, 3))
	}
	if rnd.IntN(4) == 0 {
		parts = append(parts, "BYSETPOS="+pick([]string{"1", "2", "-1", "-2", "3"}, 2))
	}
	if rnd.IntN(2) == 0 {
		parts = append(parts, "BYHOUR="+pick([]string{"0", "2", "3", "9", "23"}, 2))
	}
	if rnd.IntN(3) == 0 {
		parts = append(parts, "BYMINUTE="+pick([]string{"0", "30", "45"}, 2))
	}
	if rnd.IntN(3) == 0 {
		parts = append(parts, "WKST="+[]string{"MO", "TU", "WE", "TH", "FR", "SA", "SU"}[rnd.IntN(7)])
	}
	return strings.Join(parts, ";")
}

// TestShortcutsKeepTheStarts is the proof that starting rrule-go at a
// later INTERVAL-aligned period (without COUNT) and on a clock moved by
// 400-year cycles yields the starts that expanding from dtstart does.
// It fails when the rebased DTSTART is not a period boundary (try
// INTERVAL=1 in periodBefore) or a default taken from dtstart is lost
// (try dropping Bymonthday in withDefaults).
func TestShortcutsKeepTheStarts(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	zones := append([]string{"America/Santiago"}, diffZones...)
	tested := 0
	for i := 0; tested < 600; i++ {
		s := genWideRule(rnd)
		r, err := ParseRule(s)
		if err != nil {
			continue
		}
		if r.everyEmpty() {
			continue // expanded from dtstart, rrule-go would search to 9999
		}
		tested++
		loc := mustLoad(t, zones[i%len(zones)])
		dt := genDTStart(rnd, loc)
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(time.Duration(rnd.IntN(400*24)) * time.Hour)
		to := from.Add(time.Duration(1+rnd.IntN(120*24)) * time.Hour)
		got := collect(func(y func(time.Time) bool) { r.between(dt, from, to, true, y) })
		want := collect(func(y func(time.Time) bool) { r.between(dt, from, to, false, y) })
		if !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Fatalf("%s from %s in %s, [%s, %s):\n%s", s, dt.Format(time.RFC3339), loc, from, to, diffStarts(got, want))
		}
	}
}

// FuzzShortcuts is TestShortcutsKeepTheStarts for any rule ParseRule takes.
func FuzzShortcuts(f *testing.F) {
	for _, s := range []string{
		"FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SU;WKST=SU",
		"FREQ=MONTHLY;INTERVAL=5;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1,2",
		"FREQ=YEARLY;INTERVAL=2;BYWEEKNO=1,-1;BYDAY=MO",
		"FREQ=DAILY;INTERVAL=7;BYHOUR=2;BYMINUTE=30",
	} {
		f.Add(s, uint16(9000), uint16(100))
	}
	loc := mustLoad(f, "Europe/Stockholm")
	f.Fuzz(func(t *testing.T, s string, days, span uint16) {
		r, err := ParseRule(s)
		if err != nil || r.everyEmpty() {
			return
		}
		dt := time.Date(2000, 1, 1, 0, 0, 0, 0, loc).AddDate(0, 0, int(days)%12000)
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
		to := from.AddDate(0, 0, 1+int(span)%400)
		got := collect(func(y func(time.Time) bool) { r.between(dt, from, to, true, y) })
		want := collect(func(y func(time.Time) bool) { r.between(dt, from, to, false, y) })
		if !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Fatalf("%s from %s, [%s, %s):\n%s", s, dt.Format(time.RFC3339), from, to, diffStarts(got, want))
		}
	})
}

// everyEmpty reports whether the rule has no start at all in 2020-2040
// (expanded with the short cuts), so that a test may skip expanding it
// without them.
func (r Rule) everyEmpty() bool {
	none := true
	r.Between(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), func(time.Time) bool {
		none = false
		return false
	})
	return none
}

// TestRFC5545Examples expands the examples of RFC 5545 section 3.8.5.3
// that use the parts rrule-go brought (YEARLY, BYSETPOS, BYYEARDAY,
// BYWEEKNO, WKST), in America/New_York as the RFC does.
func TestRFC5545Examples(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		rule, dtstart string
		want          []string // local dates at 09:00
	}{
		{"FREQ=YEARLY;COUNT=10;BYMONTH=6,7", "1997-06-10", []string{"1997-06-10", "1997-07-10", "1998-06-10", "1998-07-10", "1999-06-10", "1999-07-10", "2000-06-10", "2000-07-10", "2001-06-10", "2001-07-10"}},
		{"FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200", "1997-01-01", []string{"1997-01-01", "1997-04-10", "1997-07-19", "2000-01-01", "2000-04-09", "2000-07-18", "2003-01-01", "2003-04-10", "2003-07-19", "2006-01-01"}},
		{"FREQ=YEARLY;BYDAY=20MO;UNTIL=19991231", "1997-05-19", []string{"1997-05-19", "1998-05-18", "1999-05-17"}},
		{"FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO;UNTIL=19991231", "1997-05-12", []string{"1997-05-12", "1998-05-11", "1999-05-17"}},
		{"FREQ=YEARLY;BYMONTH=3;BYDAY=TH;UNTIL=19980401", "1997-03-13", []string{"1997-03-13", "1997-03-20", "1997-03-27", "1998-03-05", "1998-03-12", "1998-03-19", "1998-03-26"}},
		{"FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8;UNTIL=20050101", "1996-11-05", []string{"1996-11-05", "2000-11-07", "2004-11-02"}},
		{"FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3", "1997-09-04", []string{"1997-09-04", "1997-10-07", "1997-11-06"}},
		{"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2;UNTIL=19980401", "1997-09-29", []string{"1997-09-29", "1997-10-30", "1997-11-27", "1997-12-30", "1998-01-29", "1998-02-26", "1998-03-30"}},
		{"FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO", "1997-08-05", []string{"1997-08-05", "1997-08-10", "1997-08-19", "1997-08-24"}},
		{"FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU", "1997-08-05", []string{"1997-08-05", "1997-08-17", "1997-08-19", "1997-08-31"}},
		{"FREQ=MONTHLY;BYMONTHDAY=-3;COUNT=6", "1997-09-28", []string{"1997-09-28", "1997-10-29", "1997-11-28", "1997-12-29", "1998-01-29", "1998-02-26"}},
		{"FREQ=YEARLY;BYMONTH=1;BYDAY=SU,1MO;COUNT=6", "2026-01-01", []string{"2026-01-04", "2026-01-05", "2026-01-11", "2026-01-18", "2026-01-25", "2027-01-03"}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRule(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			dt, _ := time.ParseInLocation("2006-01-02 15:04", tt.dtstart+" 09:00", ny)
			var got []string
			r.Between(dt, dt, dt.AddDate(12, 0, 0), func(s time.Time) bool {
				if s.In(ny).Hour() != 9 {
					t.Errorf("start %s is not at 09:00", s)
				}
				got = append(got, s.In(ny).Format("2006-01-02"))
				return len(got) < 20
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("starts\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// weekNo returns the number of the week holding d when weeks start on
// wkst and week 1 is the first with four days in the year (the one that
// holds 4 January), the year that week belongs to, and the number of
// weeks of that year.
func weekNo(d time.Time, wkst time.Weekday) (n, year, weeks int) {
	week1 := func(y int) time.Time {
		j4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
		return j4.AddDate(0, 0, -((int(j4.Weekday()) - int(wkst) + 7) % 7))
	}
	year = d.Year()
	if d.Before(week1(year)) {
		year--
	} else if !d.Before(week1(year + 1)) {
		year++
	}
	n = int(d.Sub(week1(year)).Hours()/24)/7 + 1
	weeks = int(week1(year+1).Sub(week1(year)).Hours()/24) / 7
	return n, year, weeks
}

// TestYearlyDayPartsMatchBruteForce compares YEARLY rules built from the
// day parts (BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY, BYDAY, WKST) with a
// day-by-day check of what RFC 5545 says each part means.
func TestYearlyDayPartsMatchBruteForce(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(3, 4))
	days := []string{"MO", "TU", "WE", "TH", "FR", "SA", "SU"}
	wdays := map[string]time.Weekday{"SU": 0, "MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6}
	n := 300
	if testing.Short() {
		n = 50
	}
	for range n {
		var parts []string
		wkst := days[rnd.IntN(7)]
		parts = append(parts, "FREQ=YEARLY", "WKST="+wkst)
		var months, weeknos, ydays, mdays []int
		var plain []time.Weekday
		type nth struct {
			n int
			d time.Weekday
		}
		var nths []nth
		if rnd.IntN(3) == 0 {
			months = []int{1 + rnd.IntN(12), 1 + rnd.IntN(12)}
		}
		if rnd.IntN(2) == 0 {
			weeknos = []int{[]int{1, 2, 26, 51, -51, -1, -2}[rnd.IntN(7)], 1 + rnd.IntN(51)} // 52, 53, -52, -53 are refused
		}
		if rnd.IntN(3) == 0 {
			ydays = []int{[]int{1, 2, 60, 365, 366, -1, -2, -365, -366}[rnd.IntN(9)], 1 + rnd.IntN(366)}
		}
		if rnd.IntN(3) == 0 {
			mdays = []int{[]int{1, 29, 30, 31, -1, -2}[rnd.IntN(6)]}
		}
		switch rnd.IntN(3) {
		case 0:
			plain = []time.Weekday{time.Weekday(rnd.IntN(7)), time.Weekday(rnd.IntN(7))}
		case 1:
			if len(weeknos) == 0 {
				lim := 53
				if len(months) > 0 {
					lim = 5
				}
				nths = []nth{{1 + rnd.IntN(lim), time.Weekday(rnd.IntN(7))}, {-1 - rnd.IntN(lim), time.Weekday(rnd.IntN(7))}}
			}
		}
		ints := func(k string, ns []int) {
			if len(ns) > 0 {
				parts = append(parts, k+"="+joinInts(ns))
			}
		}
		ints("BYMONTH", months)
		ints("BYWEEKNO", weeknos)
		ints("BYYEARDAY", ydays)
		ints("BYMONTHDAY", mdays)
		var bd []string
		for _, d := range plain {
			bd = append(bd, days[(int(d)+6)%7])
		}
		for _, x := range nths {
			bd = append(bd, fmt.Sprintf("%d%s", x.n, days[(int(x.d)+6)%7]))
		}
		if len(bd) > 0 {
			parts = append(parts, "BYDAY="+strings.Join(bd, ","))
		}
		if len(weeknos)+len(ydays)+len(mdays)+len(bd) == 0 {
			continue // no day part: the day of dtstart applies
		}
		rule := strings.Join(parts, ";")
		r, err := ParseRule(rule)
		if err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
		from, to := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)
		var want []time.Time
		for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
			ylen := time.Date(d.Year(), 12, 31, 0, 0, 0, 0, time.UTC).YearDay()
			mlen := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
			in := func(ns []int, v, length int) bool {
				return len(ns) == 0 || slices.Contains(ns, v) || slices.Contains(ns, v-length-1)
			}
			n, _, weeks := weekNo(d, wdays[wkst])
			ok := (len(months) == 0 || slices.Contains(months, int(d.Month()))) &&
				in(weeknos, n, weeks) && in(ydays, d.YearDay(), ylen) && in(mdays, d.Day(), mlen) &&
				(len(plain) == 0 || slices.Contains(plain, d.Weekday()))
			if len(nths) > 0 {
				first, last := d.YearDay(), ylen // position within the year, or the month with BYMONTH
				if len(months) > 0 {
					first, last = d.Day(), mlen
				}
				ok = ok && slices.ContainsFunc(nths, func(x nth) bool {
					return x.d == d.Weekday() && (x.n == (first-1)/7+1 || x.n == -((last-first)/7+1))
				})
			}
			if ok {
				want = append(want, d)
			}
		}
		got := collect(func(y func(time.Time) bool) { r.Between(from, from, to, y) })
		if !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Fatalf("%s:\n%s", rule, diffStarts(got, want))
		}
	}
}
