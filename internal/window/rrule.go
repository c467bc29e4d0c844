package window

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// Rule is a parsed RFC 5545 recurrence rule, expanded by
// github.com/teambition/rrule-go. It holds FREQ (YEARLY, MONTHLY, WEEKLY
// or DAILY), INTERVAL, COUNT, UNTIL, WKST, BYMONTH, BYWEEKNO and
// BYYEARDAY (YEARLY only), BYMONTHDAY, BYDAY (with an ordinal such as 1MO
// or -1FR under MONTHLY and YEARLY), BYSETPOS, BYHOUR and BYMINUTE.
//
// ParseRule refuses every other part, and every part rrule-go would
// ignore, rather than expand a rule other than the one written. A Rule is
// a value: it is safe for concurrent use.
type Rule struct {
	opt   rrule.ROption // Dtstart, Count and Until are never set here
	count int
	until time.Time // zero: no end
}

var dayNames = map[string]rrule.Weekday{"MO": rrule.MO, "TU": rrule.TU, "WE": rrule.WE,
	"TH": rrule.TH, "FR": rrule.FR, "SA": rrule.SA, "SU": rrule.SU}

// frequencies are the FREQ values a window may use. HOURLY and finer are
// refused: a window that starts several times a day is FREQ=DAILY with
// BYHOUR, which also keeps an expansion to a few starts per day.
var frequencies = map[string]rrule.Frequency{"YEARLY": rrule.YEARLY, "MONTHLY": rrule.MONTHLY,
	"WEEKLY": rrule.WEEKLY, "DAILY": rrule.DAILY}

const (
	partsList = "FREQ, INTERVAL, COUNT, UNTIL, WKST, BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY, BYDAY, BYSETPOS, BYHOUR, BYMINUTE"
	freqList  = "YEARLY, MONTHLY, WEEKLY or DAILY (for several starts a day, DAILY with BYHOUR, e.g. FREQ=DAILY;BYHOUR=0,6,12,18)"
)

// ParseRule parses s, e.g. "FREQ=WEEKLY;BYDAY=MO,TU;BYHOUR=9;BYMINUTE=0".
// An optional "RRULE:" prefix is accepted. The error names the part at
// fault and says what is supported.
func ParseRule(s string) (Rule, error) {
	var r Rule
	s = strings.TrimPrefix(strings.TrimSpace(s), "RRULE:")
	if s == "" {
		return r, fmt.Errorf("rrule is required, e.g. FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0")
	}
	// Each part is checked here, then the rule without COUNT and UNTIL
	// (which Between applies itself) is handed to rrule-go in a canonical
	// spelling it cannot misread.
	var (
		seen   = map[string]bool{}
		canon  []string
		freq   string
		byDay  []rrule.Weekday
		hasSet bool
	)
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
		var (
			ns  []int
			err error
		)
		switch k {
		case "FREQ":
			if _, ok := frequencies[v]; !ok {
				return r, fmt.Errorf("FREQ=%s is not supported; use %s", v, freqList)
			}
			freq = v
			canon = append(canon, k+"="+v)
			continue
		case "INTERVAL":
			var n int
			n, err = atoiIn(k, v, 1, 1000)
			ns = []int{n}
		case "COUNT":
			r.count, err = atoiIn(k, v, 1, 100000)
			if err != nil {
				return r, err
			}
			continue
		case "UNTIL":
			r.until, err = parseUntil(v)
			if err != nil {
				return r, err
			}
			continue
		case "WKST":
			if _, ok := dayNames[v]; !ok {
				return r, fmt.Errorf("WKST=%s is not a day; use MO, TU, WE, TH, FR, SA or SU (default MO)", v)
			}
			canon = append(canon, k+"="+v)
			continue
		case "BYMONTH":
			ns, err = intList(k, v, 1, 12, false)
		case "BYWEEKNO":
			// rrule-go misnumbers the days a week 52 or 53 (or week 1,
			// counted from the end) has in the neighbouring year; the
			// weeks in between, and -1, it gets right.
			if ns, err = intList(k, v, 1, 53, true); err == nil {
				for _, n := range ns {
					if n >= 52 || n <= -52 {
						return r, fmt.Errorf("BYWEEKNO value %d is not supported (weeks 52 and 53 cross into the next year, which rrule-go gets wrong); use -1 for the last week of the year, or 1 to 51 or -2 to -51", n)
					}
				}
			}
		case "BYYEARDAY":
			ns, err = intList(k, v, 1, 366, true)
		case "BYMONTHDAY":
			ns, err = intList(k, v, 1, 31, true)
		case "BYSETPOS":
			ns, err = intList(k, v, 1, 366, true)
			hasSet = true
		case "BYHOUR":
			ns, err = intList(k, v, 0, 23, false)
		case "BYMINUTE":
			ns, err = intList(k, v, 0, 59, false)
		case "BYDAY":
			var names []string
			for _, d := range strings.Split(v, ",") {
				name := d[max(0, len(d)-2):]
				wd, ok := dayNames[name]
				if !ok {
					return r, fmt.Errorf("BYDAY %q is not a day (MO, TU, WE, TH, FR, SA, SU, optionally with an ordinal such as 1MO or -1FR)", d)
				}
				if ord := d[:len(d)-2]; ord != "" {
					n, err := strconv.Atoi(strings.TrimPrefix(ord, "+"))
					if err != nil || n == 0 || n < -53 || n > 53 {
						return r, fmt.Errorf("BYDAY %q: the ordinal must be 1 to 53 or -1 to -53 (1 to 5 or -1 to -5 under MONTHLY)", d)
					}
					wd = wd.Nth(n)
				}
				if !slices.Contains(byDay, wd) {
					byDay = append(byDay, wd)
					names = append(names, wd.String())
				}
			}
			canon = append(canon, k+"="+strings.Join(names, ","))
			continue
		case "BYSECOND":
			return r, fmt.Errorf("BYSECOND is not supported; occurrences start at the seconds of dtstart")
		default:
			return r, fmt.Errorf("%s is not supported; use %s", k, partsList)
		}
		if err != nil {
			return r, err
		}
		canon = append(canon, k+"="+joinInts(ns))
	}
	if freq == "" {
		return r, fmt.Errorf("FREQ is required (%s)", freqList)
	}
	if r.count > 0 && !r.until.IsZero() {
		return r, fmt.Errorf("COUNT and UNTIL may not both be given")
	}
	for _, d := range byDay {
		switch n := d.N(); {
		case n == 0:
		case freq != "MONTHLY" && freq != "YEARLY":
			return r, fmt.Errorf("BYDAY with an ordinal (%s) needs FREQ=MONTHLY or FREQ=YEARLY", d)
		case (freq == "MONTHLY" || seen["BYMONTH"]) && (n < -5 || n > 5):
			return r, fmt.Errorf("BYDAY %s: within a month (FREQ=MONTHLY, or YEARLY with BYMONTH) the ordinal must be 1 to 5 or -1 to -5", d)
		case seen["BYWEEKNO"]:
			return r, fmt.Errorf("BYDAY with an ordinal (%s) may not be used with BYWEEKNO", d)
		}
	}
	// rrule-go (like python-dateutil) keeps only the days that match both
	// an every-weekday value and an ordinal one (BYDAY=MO,1SU would be
	// first Sundays that are Mondays), where RFC 5545 means either. Every
	// Monday in a month is the 1st to 5th Monday (in a year, the 1st to
	// 53rd), so written out as ordinals the list means what it says.
	if mixed := slices.ContainsFunc(byDay, func(d rrule.Weekday) bool { return d.N() != 0 }) &&
		slices.ContainsFunc(byDay, func(d rrule.Weekday) bool { return d.N() == 0 }); mixed {
		most := 5
		if freq == "YEARLY" && !seen["BYMONTH"] {
			most = 53
		}
		var names []string
		for _, d := range byDay {
			if d.N() != 0 {
				names = append(names, d.String())
				continue
			}
			for n := 1; n <= most; n++ {
				names = append(names, d.Nth(n).String())
			}
		}
		i := slices.IndexFunc(canon, func(p string) bool { return strings.HasPrefix(p, "BYDAY=") })
		canon[i] = "BYDAY=" + strings.Join(names, ",")
	}
	if seen["BYMONTHDAY"] && freq == "WEEKLY" {
		return r, fmt.Errorf("BYMONTHDAY may not be used with FREQ=WEEKLY")
	}
	for _, k := range []string{"BYWEEKNO", "BYYEARDAY"} {
		if seen[k] && freq != "YEARLY" {
			return r, fmt.Errorf("%s needs FREQ=YEARLY", k)
		}
	}
	if hasSet && !slices.ContainsFunc([]string{"BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE"},
		func(k string) bool { return seen[k] }) {
		return r, fmt.Errorf("BYSETPOS needs another BY part to pick from, e.g. FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1 (the last weekday of the month)")
	}
	opt, err := rrule.StrToROptionInLocation(strings.Join(canon, ";"), time.UTC)
	if err != nil {
		return r, fmt.Errorf("rrule-go rejects %q: %v", strings.Join(canon, ";"), err)
	}
	r.opt = *opt
	return r, nil
}

func joinInts(ns []int) string {
	fs := make([]string, len(ns))
	for i, n := range ns {
		fs[i] = strconv.Itoa(n)
	}
	return strings.Join(fs, ",")
}

func atoiIn(k, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%s: want a whole number from %d to %d", k, v, lo, hi)
	}
	return n, nil
}

func intList(k, v string, lo, hi int, negative bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || (n < lo && !(negative && n < 0 && n >= -hi)) || n > hi {
			if negative {
				return nil, fmt.Errorf("%s value %q: want a whole number from %d to %d or -%d to -%d", k, f, lo, hi, lo, hi)
			}
			return nil, fmt.Errorf("%s value %q: want a whole number from %d to %d", k, f, lo, hi)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parseUntil(v string) (time.Time, error) {
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

// civil returns t's wall clock as a time in UTC, which has no
// daylight-saving days: rrule-go expands rules on this floating clock.
func civil(t time.Time) time.Time {
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, m, d, h, mi, s, 0, time.UTC)
}

// cycleYears is the Gregorian cycle: moving the floating clock by whole
// cycles (146097 days, a whole number of weeks) leaves every date's
// weekday, week number and leap year as they were.
const cycleYears = 400

// Between calls yield with each start of the rule, beginning at dtstart
// (whose location sets the wall clock), that lies in [from, to), in order,
// until yield returns false. COUNT counts from dtstart.
func (r Rule) Between(dtstart, from, to time.Time, yield func(time.Time) bool) {
	r.between(dtstart, from, to, true, yield)
}

// between is Between; with fast false it expands from dtstart itself on
// an unmoved clock (for the tests that the short cuts change nothing).
//
// rrule-go iterates from its DTSTART, and with a rule that never matches
// it searches on to the year 9999. So without COUNT the expansion starts
// at the beginning of the INTERVAL period that holds the day before from:
// the periods, and so the starts, are those counted from dtstart. And the
// floating clock is moved by whole 400-year cycles so that year 9999 lies
// less than 400 years after to.
func (r Rule) between(dtstart, from, to time.Time, fast bool, yield func(time.Time) bool) {
	if !from.Before(to) {
		return
	}
	loc := dtstart.Location()
	opt := r.withDefaults(civil(dtstart))
	start := opt.Dtstart
	if fast && r.count == 0 {
		start = r.periodBefore(start, civil(from.In(loc)).AddDate(0, 0, -1))
	}
	shift := 0
	if y := civil(to.In(loc)).Year() + 1; fast && y < rrule.MAXYEAR {
		shift = (rrule.MAXYEAR - y) / cycleYears * cycleYears
	}
	opt.Dtstart = start.AddDate(shift, 0, 0)
	rr, err := rrule.NewRRule(opt)
	if err != nil {
		return // ParseRule checked every bound rrule-go checks
	}
	next := rr.Iterator()
	n := 0
	// A day's starts are gathered, placed on the zone's clock, sorted and
	// made unique before they count: around a daylight-saving change two
	// wall-clock times may name one instant, or come out of order.
	// A start no later than the one before (possible only where a zone
	// skipped a whole day, as Pacific/Apia did in 2011) is dropped, so
	// the starts yielded always increase.
	var day []time.Time
	var dayOf, prev time.Time
	flush := func() bool {
		slices.SortFunc(day, time.Time.Compare)
		day = slices.CompactFunc(day, time.Time.Equal)
		for _, t := range day {
			if t.Before(dtstart) || (!prev.IsZero() && !t.After(prev)) {
				continue
			}
			prev = t
			n++
			if r.count > 0 && n > r.count {
				return false
			}
			if !r.until.IsZero() && t.After(r.until) {
				return false
			}
			if t.Before(from) {
				continue
			}
			if !t.Before(to) || !yield(t) {
				return false
			}
		}
		day = day[:0]
		return true
	}
	// A day that begins after to (with a day of slack for zones ahead of
	// UTC) holds no start before to.
	last := civil(to.In(loc)).AddDate(shift, 0, 1)
	for {
		c, ok := next()
		if !ok || c.After(last) {
			flush()
			return
		}
		if y, m, d := c.Date(); dayOf.IsZero() || d != dayOf.Day() || m != dayOf.Month() || y != dayOf.Year() {
			if !flush() {
				return
			}
			dayOf = c
		}
		y, m, d := c.Date()
		h, mi, s := c.Clock()
		day = append(day, wallClock(y-shift, m, d, h, mi, s, loc))
	}
}

// withDefaults returns the rule's options with dtstart (a floating time)
// set and the parts rrule-go would take from dtstart written out, so that
// a later DTSTART in the same INTERVAL alignment yields the same starts.
func (r Rule) withDefaults(dt time.Time) rrule.ROption {
	o := r.opt
	o.Dtstart = dt
	if len(o.Byweekno) == 0 && len(o.Byyearday) == 0 && len(o.Bymonthday) == 0 && len(o.Byweekday) == 0 {
		switch o.Freq {
		case rrule.YEARLY:
			if len(o.Bymonth) == 0 {
				o.Bymonth = []int{int(dt.Month())}
			}
			o.Bymonthday = []int{dt.Day()}
		case rrule.MONTHLY:
			o.Bymonthday = []int{dt.Day()}
		case rrule.WEEKLY:
			o.Byweekday = []rrule.Weekday{weekdayOf(dt.Weekday())}
		}
	}
	if len(o.Byhour) == 0 {
		o.Byhour = []int{dt.Hour()}
	}
	if len(o.Byminute) == 0 {
		o.Byminute = []int{dt.Minute()}
	}
	o.Bysecond = []int{dt.Second()}
	return o
}

func weekdayOf(d time.Weekday) rrule.Weekday {
	return []rrule.Weekday{rrule.SU, rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA}[d]
}

// periodBefore returns the first day (at 00:00) of the last INTERVAL
// period, counted from the one holding dtstart, that begins no later than
// day; dtstart itself if that is dtstart's own period. rrule-go's periods
// are days, weeks beginning on WKST, months and years.
func (r Rule) periodBefore(dtstart, day time.Time) time.Time {
	if !day.After(dtstart) {
		return dtstart
	}
	ival := max(1, r.opt.Interval)
	y, m, d := dtstart.Date()
	var first time.Time
	var k int
	switch r.opt.Freq {
	case rrule.DAILY:
		first = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		k = days(first, day) / ival
		first = first.AddDate(0, 0, k*ival)
	case rrule.WEEKLY:
		back := (int(dtstart.Weekday()) + 6 - r.opt.Wkst.Day()) % 7 // days since the week began
		first = time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
		k = days(first, day) / 7 / ival
		first = first.AddDate(0, 0, 7*k*ival)
	case rrule.MONTHLY:
		k = ((day.Year()-y)*12 + int(day.Month()-m)) / ival
		first = time.Date(y, m+time.Month(k*ival), 1, 0, 0, 0, 0, time.UTC)
	default:
		k = (day.Year() - y) / ival
		first = time.Date(y+k*ival, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if k <= 0 {
		return dtstart
	}
	return first
}

// days returns the whole days from a to b, both in UTC (time.Duration
// holds only 292 years).
func days(a, b time.Time) int {
	return int((b.Unix() - a.Unix()) / (24 * 60 * 60))
}

// wallClock returns the instant the wall clock in loc shows on y-m-d at
// h:mi:s. A time that occurs twice (when clocks go back) is the first of
// the two, as RFC 5545 asks; one that does not occur (when clocks go
// forward) moves forward by the gap: 02:30 on a night that skips from
// 02:00 to 03:00 is 03:30. time.Date alone gives no such promise (it reads
// a skipped time an hour early west of UTC, and a repeated one as the
// second east of UTC), so both cases are settled here.
func wallClock(y int, m time.Month, d, h, mi, s int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, h, mi, s, 0, loc)
	_, off := t.Zone()
	want := time.Date(y, m, d, h, mi, s, 0, time.UTC).Unix()
	shown := t.Unix() + int64(off)
	switch {
	case shown < want:
		// Skipped, and read in the zone after the gap: read it in the
		// zone before, which t is in.
		return time.Unix(want-int64(off), 0).In(loc)
	case shown > want:
		return t // skipped, and read in the zone before the gap
	}
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	if _, prev := start.Add(-time.Second).Zone(); prev > off {
		if e := t.Add(-time.Duration(prev-off) * time.Second); e.Before(start) {
			return e // the first of two
		}
	}
	return t
}
