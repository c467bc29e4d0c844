package window

// This file is the hand-written RRULE subset that internal/window used
// before it moved onto github.com/teambition/rrule-go, kept verbatim
// (names prefixed with old) as the oracle of the differential test, with
// one change: Between takes the function that places a wall-clock time in
// its zone, so the oracle can be run with its own oldWallClock or with
// the one the package uses now.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// oldRule is a parsed subset of an RFC 5545 recurrence rule: FREQ (DAILY,
// WEEKLY or MONTHLY), INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY
// (with an ordinal such as 1MO or -1FR only under MONTHLY), BYHOUR and
// BYMINUTE. Weeks start on Monday. A local time that does not exist (a
// daylight-saving gap) moves forward by the gap, as time.Date does.
type oldRule struct {
	Freq     string
	Interval int
	Count    int
	Until    time.Time // zero: no end
	ByMonth  []time.Month
	ByMonthD []int
	ByDay    []oldWeekday
	ByHour   []int
	ByMinute []int
}

type oldWeekday struct {
	N   int // 0: every such day in the period; ±n: the nth (from the end) in the month
	Day time.Weekday
}

var oldDayNames = map[string]time.Weekday{"MO": time.Monday, "TU": time.Tuesday, "WE": time.Wednesday,
	"TH": time.Thursday, "FR": time.Friday, "SA": time.Saturday, "SU": time.Sunday}

// parseOldRule parses s, e.g. "FREQ=WEEKLY;BYDAY=MO,TU;BYHOUR=9;BYMINUTE=0".
// An optional "RRULE:" prefix is accepted. The error names the part at
// fault and says what is supported.
func parseOldRule(s string) (oldRule, error) {
	r := oldRule{Interval: 1}
	s = strings.TrimPrefix(strings.TrimSpace(s), "RRULE:")
	if s == "" {
		return r, fmt.Errorf("rrule is required, e.g. FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0")
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.ToUpper(strings.TrimSpace(k))
		v = strings.ToUpper(strings.TrimSpace(v))
		if !ok || v == "" {
			return r, fmt.Errorf("%q is not NAME=VALUE", part)
		}
		if seen[k] {
			return r, fmt.Errorf("%s is given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "FREQ":
			if v != "DAILY" && v != "WEEKLY" && v != "MONTHLY" {
				return r, fmt.Errorf("FREQ=%s is not supported; use DAILY, WEEKLY or MONTHLY", v)
			}
			r.Freq = v
		case "INTERVAL":
			r.Interval, err = oldAtoiIn(k, v, 1, 1000)
		case "COUNT":
			r.Count, err = oldAtoiIn(k, v, 1, 100000)
		case "UNTIL":
			r.Until, err = oldParseUntil(v)
		case "BYMONTH":
			var ns []int
			ns, err = oldIntList(k, v, 1, 12, false)
			for _, n := range ns {
				r.ByMonth = append(r.ByMonth, time.Month(n))
			}
		case "BYMONTHDAY":
			r.ByMonthD, err = oldIntList(k, v, 1, 31, true)
		case "BYHOUR":
			r.ByHour, err = oldIntList(k, v, 0, 23, false)
		case "BYMINUTE":
			r.ByMinute, err = oldIntList(k, v, 0, 59, false)
		case "BYDAY":
			for _, d := range strings.Split(v, ",") {
				name := d[max(0, len(d)-2):]
				wd, ok := oldDayNames[name]
				if !ok {
					return r, fmt.Errorf("BYDAY %q is not a day (MO, TU, WE, TH, FR, SA, SU, optionally with an ordinal such as 1MO or -1FR)", d)
				}
				n := 0
				if ord := d[:len(d)-2]; ord != "" {
					n, err = strconv.Atoi(strings.TrimPrefix(ord, "+"))
					if err != nil || n == 0 || n < -5 || n > 5 {
						return r, fmt.Errorf("BYDAY %q: the ordinal must be 1 to 5 or -1 to -5", d)
					}
				}
				r.ByDay = append(r.ByDay, oldWeekday{N: n, Day: wd})
			}
		case "WKST":
			if v != "MO" {
				return r, fmt.Errorf("WKST=%s is not supported; weeks start on Monday (WKST=MO)", v)
			}
		default:
			return r, fmt.Errorf("%s is not supported; use FREQ, INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY, BYHOUR, BYMINUTE", k)
		}
		if err != nil {
			return r, err
		}
	}
	if r.Freq == "" {
		return r, fmt.Errorf("FREQ is required (DAILY, WEEKLY or MONTHLY)")
	}
	if r.Count > 0 && !r.Until.IsZero() {
		return r, fmt.Errorf("COUNT and UNTIL may not both be given")
	}
	for _, d := range r.ByDay {
		if d.N != 0 && r.Freq != "MONTHLY" {
			return r, fmt.Errorf("BYDAY with an ordinal (%d%s) needs FREQ=MONTHLY", d.N, strings.ToUpper(d.Day.String()[:2]))
		}
	}
	if len(r.ByMonthD) > 0 && r.Freq == "WEEKLY" {
		return r, fmt.Errorf("BYMONTHDAY may not be used with FREQ=WEEKLY")
	}
	return r, nil
}

func oldAtoiIn(k, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%s: want a whole number from %d to %d", k, v, lo, hi)
	}
	return n, nil
}

func oldIntList(k, v string, lo, hi int, negative bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || (n < lo && !(negative && n < 0 && n >= -hi)) || n > hi {
			return nil, fmt.Errorf("%s value %q: want a whole number from %d to %d", k, f, lo, hi)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func oldParseUntil(v string) (time.Time, error) {
	for _, layout := range []string{"20060102T150405Z", "20060102"} {
		if t, err := time.Parse(layout, v); err == nil {
			if layout == "20060102" {
				t = t.Add(24*time.Hour - time.Second)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("UNTIL=%s: want a UTC date-time such as 20261231T235959Z or a date such as 20261231", v)
}

// oldCivil is a calendar date with no zone; arithmetic on it is done in UTC,
// which has no daylight-saving days.
func oldCivil(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func oldMondayOf(d time.Time) time.Time {
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// periodStart returns the first day of period k (counted in intervals)
// after the period holding start.
func (r oldRule) periodStart(start time.Time, k int) time.Time {
	switch r.Freq {
	case "DAILY":
		return start.AddDate(0, 0, k*r.Interval)
	case "WEEKLY":
		return oldMondayOf(start).AddDate(0, 0, 7*k*r.Interval)
	default:
		return time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, k*r.Interval, 0)
	}
}

// firstPeriod returns the index of a period that starts no later than day.
func (r oldRule) firstPeriod(start, day time.Time) int {
	var n int
	switch r.Freq {
	case "DAILY":
		n = int(day.Sub(start).Hours() / 24)
	case "WEEKLY":
		n = int(oldMondayOf(day).Sub(oldMondayOf(start)).Hours() / 24 / 7)
	default:
		n = (day.Year()-start.Year())*12 + int(day.Month()-start.Month())
	}
	return max(0, n/r.Interval-1)
}

// days returns the days of the period beginning at p that the rule
// selects, in order; dt is the rule's start (for defaults).
func (r oldRule) days(p, dt time.Time) []time.Time {
	var cand []time.Time
	switch r.Freq {
	case "DAILY":
		cand = []time.Time{p}
	case "WEEKLY":
		for i := range 7 {
			d := p.AddDate(0, 0, i)
			if len(r.ByDay) == 0 && d.Weekday() != dt.Weekday() {
				continue
			}
			cand = append(cand, d)
		}
	default:
		next := p.AddDate(0, 1, 0)
		for d := p; d.Before(next); d = d.AddDate(0, 0, 1) {
			if len(r.ByDay) == 0 && len(r.ByMonthD) == 0 && d.Day() != dt.Day() {
				continue
			}
			cand = append(cand, d)
		}
	}
	out := cand[:0]
	for _, d := range cand {
		if len(r.ByMonth) > 0 && !slices.Contains(r.ByMonth, d.Month()) {
			continue
		}
		if len(r.ByMonthD) > 0 && !r.monthDay(d) {
			continue
		}
		if len(r.ByDay) > 0 && !r.weekDay(d) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func (r oldRule) monthDay(d time.Time) bool {
	last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	for _, n := range r.ByMonthD {
		if n == d.Day() || (n < 0 && last+1+n == d.Day()) {
			return true
		}
	}
	return false
}

func (r oldRule) weekDay(d time.Time) bool {
	last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	for _, w := range r.ByDay {
		if w.Day != d.Weekday() {
			continue
		}
		switch {
		case w.N == 0:
			return true
		case w.N > 0 && (d.Day()-1)/7+1 == w.N:
			return true
		case w.N < 0 && (last-d.Day())/7+1 == -w.N:
			return true
		}
	}
	return false
}

// Between calls yield with each start of the rule, beginning at dtstart
// (whose location sets the wall clock), that lies in [from, to), in order,
// until yield returns false. COUNT counts from dtstart.
func (r oldRule) Between(dtstart, from, to time.Time, place func(d time.Time, h, m, s int, loc *time.Location) time.Time, yield func(time.Time) bool) {
	loc := dtstart.Location()
	start := oldCivil(dtstart)
	k := 0
	if r.Count == 0 {
		k = r.firstPeriod(start, oldCivil(from.In(loc)))
	}
	hours, minutes := r.ByHour, r.ByMinute
	if len(hours) == 0 {
		hours = []int{dtstart.Hour()}
	}
	if len(minutes) == 0 {
		minutes = []int{dtstart.Minute()}
	}
	sec := dtstart.Second()
	n := 0
	day := make([]time.Time, 0, len(hours)*len(minutes))
	for ; ; k++ {
		p := r.periodStart(start, k)
		// A period that begins after to (with a day of slack for zones
		// ahead of UTC) holds no start before to.
		if p.After(oldCivil(to.In(loc)).AddDate(0, 0, 1)) {
			return
		}
		for _, d := range r.days(p, dtstart) {
			// Sorted and without duplicates: on the spring-forward day two
			// wall-clock times may name one instant, or come out of order.
			day = day[:0]
			for _, h := range hours {
				for _, m := range minutes {
					day = append(day, place(d, h, m, sec, loc))
				}
			}
			slices.SortFunc(day, time.Time.Compare)
			day = slices.CompactFunc(day, time.Time.Equal)
			for _, t := range day {
				if t.Before(dtstart) {
					continue
				}
				n++
				if r.Count > 0 && n > r.Count {
					return
				}
				if !r.Until.IsZero() && t.After(r.Until) {
					return
				}
				if t.Before(from) {
					continue
				}
				if !t.Before(to) {
					return
				}
				if !yield(t) {
					return
				}
			}
		}
	}
}

// oldWallClock returns the instant the wall clock in loc shows day d at h:m:s.
// A time that occurs twice (when clocks go back) is the first of the two,
// as RFC 5545 asks; one that does not occur (when clocks go forward) moves
// forward by the gap, as time.Date does.
func oldWallClock(d time.Time, h, m, s int, loc *time.Location) time.Time {
	t := time.Date(d.Year(), d.Month(), d.Day(), h, m, s, 0, loc)
	_, off := t.Zone()
	_, before := t.Add(-3 * time.Hour).Zone()
	if before > off {
		e := t.Add(-time.Duration(before-off) * time.Second)
		if e.Hour() == h && e.Minute() == m && e.Day() == d.Day() {
			return e
		}
	}
	return t
}
