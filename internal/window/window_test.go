package window_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/window"
)

var sthlm = mustZone("Europe/Stockholm")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	business = window.Window{Name: "business-hours", Spec: window.Spec{
		Kind: window.Allow, TimeZone: "Europe/Stockholm", Duration: "8h",
		RRule:        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0",
		Environments: []string{"prod"},
	}}
	freeze = window.Window{Name: "freeze-dec", Spec: window.Spec{
		Kind: window.Deny, TimeZone: "Europe/Stockholm", Duration: "168h",
		RRule:  "FREQ=MONTHLY;BYMONTH=12;BYMONTHDAY=20;BYHOUR=0;BYMINUTE=0",
		Reason: "Christmas freeze",
	}}
	nightly = window.Window{Name: "nightly", Spec: window.Spec{
		Kind: window.Allow, TimeZone: "Europe/Stockholm", Duration: "1h",
		RRule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
	}}
)

func with(w window.Window, f func(*window.Spec)) window.Window {
	f(&w.Spec)
	return w
}

func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ws       []window.Window
		app, env string
		at       string
		open     bool
		why      string // a substring of why
		next     string // RFC 3339; "" for zero
	}{
		{name: "no windows: always open", app: "shop", env: "prod", at: "2026-12-24T03:00:00Z", open: true, why: "no window applies", next: "2026-12-24T03:00:00Z"},
		{name: "inside business hours", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-11-25T10:00:00+01:00", open: true, why: "allow window business-hours", next: "2026-11-25T10:00:00+01:00"},
		{name: "last minute of business hours", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-11-25T16:59:59+01:00", open: true},
		{name: "business hours end is exclusive", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-11-25T17:00:00+01:00", open: false, why: "outside every allow window (business-hours)", next: "2026-11-26T09:00:00+01:00"},
		{name: "before business hours", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-11-25T08:59:00+01:00", open: false, next: "2026-11-25T09:00:00+01:00"},
		{name: "friday evening opens monday", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-11-27T18:00:00+01:00", open: false, next: "2026-11-30T09:00:00+01:00"},
		{name: "spring forward: monday opens at 09:00 summer time", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-03-27T18:00:00+01:00", open: false, next: "2026-03-30T09:00:00+02:00"},
		{name: "spring forward: 08:30 summer time is closed", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-03-30T06:30:00Z", open: false, next: "2026-03-30T07:00:00Z"},
		{name: "spring forward: 09:30 summer time is open", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-03-30T07:30:00Z", open: true},
		{name: "fall back: monday opens at 09:00 winter time", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-10-23T18:00:00+02:00", open: false, next: "2026-10-26T09:00:00+01:00"},
		{name: "fall back: 16:30 winter time is open", ws: []window.Window{business}, app: "shop", env: "prod", at: "2026-10-26T15:30:00Z", open: true},
		{name: "a start in the spring-forward gap moves by the gap", ws: []window.Window{nightly}, app: "shop", env: "prod", at: "2026-03-29T03:45:00+02:00", open: true},
		{name: "nightly on the fall-back night starts at the first 02:30", ws: []window.Window{nightly}, app: "shop", env: "prod", at: "2026-10-25T00:00:00Z", open: false, next: "2026-10-25T00:30:00Z"},
		{name: "scoped to prod: staging is free", ws: []window.Window{business}, app: "shop", env: "staging", at: "2026-11-25T20:00:00+01:00", open: true, why: "no window applies"},
		{name: "scoped to an application", ws: []window.Window{with(business, func(s *window.Spec) { s.Applications = []string{"cart"} })}, app: "shop", env: "prod", at: "2026-11-25T20:00:00+01:00", open: true},
		{name: "scoped to an application: that application is held", ws: []window.Window{with(business, func(s *window.Spec) { s.Applications = []string{"cart"} })}, app: "cart", env: "prod", at: "2026-11-25T20:00:00+01:00", open: false, next: "2026-11-26T09:00:00+01:00"},
		{name: "deny alone: outside it is open", ws: []window.Window{freeze}, app: "shop", env: "prod", at: "2026-12-19T23:59:00+01:00", open: true, why: "no deny window is in effect"},
		{name: "deny alone: inside it is closed until its end", ws: []window.Window{freeze}, app: "shop", env: "prod", at: "2026-12-24T12:00:00+01:00", open: false, why: "closed by deny window freeze-dec (Christmas freeze)", next: "2026-12-27T00:00:00+01:00"},
		{name: "deny beats an overlapping allow", ws: []window.Window{business, freeze}, app: "shop", env: "prod", at: "2026-12-23T10:00:00+01:00", open: false, why: "closed by deny window freeze-dec", next: "2026-12-28T09:00:00+01:00"},
		{name: "deny applies to every environment", ws: []window.Window{business, freeze}, app: "shop", env: "dev", at: "2026-12-23T10:00:00+01:00", open: false, next: "2026-12-27T00:00:00+01:00"},
		{name: "a deny starting as an allow starts holds the opening back", ws: []window.Window{business, with(freeze, func(s *window.Spec) {
			s.RRule = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
			s.Duration = "1h"
		})}, app: "shop", env: "prod", at: "2026-11-30T08:00:00+01:00", open: false, next: "2026-11-30T10:00:00+01:00"},
		{name: "allow outside the freeze still opens", ws: []window.Window{business, freeze}, app: "shop", env: "prod", at: "2026-12-18T10:00:00+01:00", open: true},
		{name: "count: no occurrence left", ws: []window.Window{with(nightly, func(s *window.Spec) {
			s.RRule = "FREQ=DAILY;COUNT=2;BYHOUR=2;BYMINUTE=30"
			s.DTStart = "2026-11-01T00:00:00+01:00"
		})}, app: "shop", env: "prod", at: "2026-11-03T02:45:00+01:00", open: false, next: ""},
		{name: "count: the last occurrence", ws: []window.Window{with(nightly, func(s *window.Spec) {
			s.RRule = "FREQ=DAILY;COUNT=2;BYHOUR=2;BYMINUTE=30"
			s.DTStart = "2026-11-01T00:00:00+01:00"
		})}, app: "shop", env: "prod", at: "2026-11-02T02:45:00+01:00", open: true},
		{name: "until is inclusive and then ends", ws: []window.Window{with(nightly, func(s *window.Spec) { s.RRule = "FREQ=DAILY;UNTIL=20261102T013000Z;BYHOUR=2;BYMINUTE=30" })}, app: "shop", env: "prod", at: "2026-11-02T03:30:00+01:00", open: false, next: ""},
		{name: "until: the occurrence at until runs its length", ws: []window.Window{with(nightly, func(s *window.Spec) { s.RRule = "FREQ=DAILY;UNTIL=20261102T013000Z;BYHOUR=2;BYMINUTE=30" })}, app: "shop", env: "prod", at: "2026-11-02T03:29:00+01:00", open: true},
		{name: "until: before it the next opening is found", ws: []window.Window{with(nightly, func(s *window.Spec) { s.RRule = "FREQ=DAILY;UNTIL=20261102T013000Z;BYHOUR=2;BYMINUTE=30" })}, app: "shop", env: "prod", at: "2026-11-01T12:00:00+01:00", open: false, next: "2026-11-02T02:30:00+01:00"},
		{name: "interval: every other week from dtstart", ws: []window.Window{with(business, func(s *window.Spec) {
			s.RRule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;BYHOUR=9;BYMINUTE=0"
			s.DTStart = "2026-11-03T00:00:00+01:00"
		})}, app: "shop", env: "prod", at: "2026-11-10T10:00:00+01:00", open: false, next: "2026-11-17T09:00:00+01:00"},
		{name: "monthly: last friday", ws: []window.Window{with(business, func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9;BYMINUTE=0" })}, app: "shop", env: "prod", at: "2026-11-20T10:00:00+01:00", open: false, next: "2026-11-27T09:00:00+01:00"},
		{name: "yearly: midsummer freeze", ws: []window.Window{with(freeze, func(s *window.Spec) {
			s.RRule = "FREQ=YEARLY;BYMONTH=6;BYMONTHDAY=19,20,21,22,23,24,25;BYDAY=FR;BYHOUR=0;BYMINUTE=0"
			s.Duration = "72h"
		})}, app: "shop", env: "prod", at: "2027-06-25T10:00:00+02:00", open: false, next: "2027-06-28T00:00:00+02:00"},
		{name: "bysetpos: the last weekday of the month", ws: []window.Window{with(business, func(s *window.Spec) {
			s.RRule = "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=9;BYMINUTE=0"
		})}, app: "shop", env: "prod", at: "2026-11-27T10:00:00+01:00", open: false, next: "2026-11-30T09:00:00+01:00"},
		{name: "bysetpos: after it, the next month's", ws: []window.Window{with(business, func(s *window.Spec) {
			s.RRule = "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=9;BYMINUTE=0"
		})}, app: "shop", env: "prod", at: "2026-12-01T10:00:00+01:00", open: false, next: "2026-12-31T09:00:00+01:00"},
		{name: "monthly: first monday", ws: []window.Window{with(business, func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0" })}, app: "shop", env: "prod", at: "2026-11-03T10:00:00+01:00", open: false, next: "2026-12-07T09:00:00+01:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			open, why, next, err := window.Open(tt.ws, tt.app, tt.env, at(tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if open != tt.open || !strings.Contains(why, tt.why) {
				t.Errorf("Open = %v, %q; want %v, containing %q", open, why, tt.open, tt.why)
			}
			if tt.next == "" && tt.open {
				return
			}
			if tt.next == "" {
				if !next.IsZero() {
					t.Errorf("next = %s, want none", next)
				}
				return
			}
			if !next.Equal(at(tt.next)) {
				t.Errorf("next = %s, want %s", next.In(sthlm).Format(time.RFC3339), tt.next)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := business.Spec
	tests := []struct {
		name  string
		edit  func(*window.Spec)
		path  string
		words string
	}{
		{"valid", func(*window.Spec) {}, "", ""},
		{"kind", func(s *window.Spec) { s.Kind = "block" }, "spec.kind", "allow or deny"},
		{"no zone", func(s *window.Spec) { s.TimeZone = "" }, "spec.timeZone", "required"},
		{"bad zone", func(s *window.Spec) { s.TimeZone = "Europe/Stokholm" }, "spec.timeZone", "IANA"},
		{"no rrule", func(s *window.Spec) { s.RRule = "" }, "spec.rrule", "required"},
		{"minutely", func(s *window.Spec) { s.RRule = "FREQ=MINUTELY" }, "spec.rrule", "YEARLY, MONTHLY, WEEKLY or DAILY"},
		{"no freq", func(s *window.Spec) { s.RRule = "BYHOUR=9" }, "spec.rrule", "FREQ is required"},
		{"bad hour", func(s *window.Spec) { s.RRule = "FREQ=DAILY;BYHOUR=24" }, "spec.rrule", "0 to 23"},
		{"bad day", func(s *window.Spec) { s.RRule = "FREQ=WEEKLY;BYDAY=MON" }, "spec.rrule", "not a day"},
		{"ordinal needs monthly", func(s *window.Spec) { s.RRule = "FREQ=WEEKLY;BYDAY=1MO" }, "spec.rrule", "MONTHLY"},
		{"unsupported part", func(s *window.Spec) { s.RRule = "FREQ=DAILY;BYEASTER=0" }, "spec.rrule", "BYEASTER is not supported"},
		{"count and until", func(s *window.Spec) { s.RRule = "FREQ=DAILY;COUNT=3;UNTIL=20261231" }, "spec.rrule", "both"},
		{"yearly", func(s *window.Spec) { s.RRule = "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20" }, "", ""},
		{"week 20 from sunday", func(s *window.Spec) { s.RRule = "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO;WKST=SU" }, "", ""},
		{"last weekday of the month", func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1" }, "", ""},
		{"hourly", func(s *window.Spec) { s.RRule = "FREQ=HOURLY;INTERVAL=6" }, "spec.rrule", "DAILY with BYHOUR"},
		{"week numbers need yearly", func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYWEEKNO=1" }, "spec.rrule", "BYWEEKNO needs FREQ=YEARLY"},
		{"year days need yearly", func(s *window.Spec) { s.RRule = "FREQ=DAILY;BYYEARDAY=1" }, "spec.rrule", "BYYEARDAY needs FREQ=YEARLY"},
		{"week 53", func(s *window.Spec) { s.RRule = "FREQ=YEARLY;BYWEEKNO=53" }, "spec.rrule", "use -1 for the last week"},
		{"set position alone", func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYSETPOS=1" }, "spec.rrule", "BYSETPOS needs another BY part"},
		{"set position zero", func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0" }, "spec.rrule", "1 to 366"},
		{"sixth monday of a month", func(s *window.Spec) { s.RRule = "FREQ=MONTHLY;BYDAY=6MO" }, "spec.rrule", "1 to 5"},
		{"ordinal with week numbers", func(s *window.Spec) { s.RRule = "FREQ=YEARLY;BYWEEKNO=1;BYDAY=1MO" }, "spec.rrule", "BYWEEKNO"},
		{"week start", func(s *window.Spec) { s.RRule = "FREQ=WEEKLY;WKST=XX" }, "spec.rrule", "WKST=XX is not a day"},
		{"seconds", func(s *window.Spec) { s.RRule = "FREQ=DAILY;BYSECOND=0" }, "spec.rrule", "BYSECOND is not supported"},
		{"never starts", func(s *window.Spec) { s.RRule = "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30" }, "spec.rrule", "no start in the 400 years"},
		{"until before dtstart", func(s *window.Spec) { s.RRule = "FREQ=DAILY;UNTIL=20201231"; s.DTStart = "2026-01-01T00:00:00Z" }, "spec.rrule", "UNTIL is after dtstart"},
		{"a start long ago is a start", func(s *window.Spec) { s.RRule = "FREQ=DAILY;COUNT=1" }, "", ""},
		{"dtstart", func(s *window.Spec) { s.DTStart = "2026-01-01" }, "spec.dtstart", "RFC 3339"},
		{"no duration", func(s *window.Spec) { s.Duration = "" }, "spec.duration", "required"},
		{"zero duration", func(s *window.Spec) { s.Duration = "0s" }, "spec.duration", "greater than zero"},
		{"too long", func(s *window.Spec) { s.Duration = "745h" }, "spec.duration", "31 days"},
		{"31 days is fine", func(s *window.Spec) { s.Duration = "744h" }, "", ""},
		{"bad environment", func(s *window.Spec) { s.Environments = []string{"prod", "Prod!"} }, "spec.environments[1]", ""},
		{"bad application", func(s *window.Spec) { s.Applications = []string{""} }, "spec.applications[0]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := ok
			s.Environments = append([]string(nil), ok.Environments...)
			tt.edit(&s)
			err := window.Validate(s)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("valid spec rejected: %v", err)
				}
				return
			}
			var pe *resource.PathError
			if !errors.As(err, &pe) || pe.Path != tt.path || !strings.Contains(pe.Msg, tt.words) {
				t.Fatalf("error = %v; want one at %s containing %q", err, tt.path, tt.words)
			}
		})
	}
}

func TestOpenRejectsAnInvalidWindow(t *testing.T) {
	t.Parallel()
	bad := with(freeze, func(s *window.Spec) { s.TimeZone = "Mars/Olympus" })
	if _, _, _, err := window.Open([]window.Window{bad}, "shop", "prod", at("2026-12-24T12:00:00Z")); err == nil || !strings.Contains(err.Error(), "freeze-dec") {
		t.Fatalf("an invalid deny window must not be ignored: %v", err)
	}
}
