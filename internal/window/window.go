// Package window defines the Window kind: periods, given as RFC 5545
// recurrence rules in a time zone, in which promotions are allowed (allow
// windows) or forbidden (deny windows, e.g. a December freeze), scoped to
// environments and applications.
//
// Open decides, purely, whether a promotion may happen at an instant and
// when it next may. The package also registers the "window" gate type with
// internal/gate (in init, like a database/sql driver): the gate reads the
// windows from gate.Input.Extra["window"], a []window.Window.
package window

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// KindName is the kind as written in documents.
const KindName = "Window"

// Window kinds.
const (
	Allow = "allow"
	Deny  = "deny"
)

// MaxDuration is the longest a window may stay open per occurrence.
const MaxDuration = 31 * 24 * time.Hour

// Horizon is how far ahead Open looks for the next opening.
const Horizon = 366 * 24 * time.Hour

// Spec is what a user declares about a window.
type Spec struct {
	// Kind is allow or deny. Deny beats allow; once any allow window
	// applies to an application and environment, promotions there are
	// possible only inside one.
	Kind string `json:"kind"`
	// TimeZone is the IANA zone the rule's wall clock is read in, e.g.
	// Europe/Stockholm.
	TimeZone string `json:"timeZone"`
	// RRule is when each occurrence starts, e.g.
	// "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0". See ParseRule
	// for the supported subset.
	RRule string `json:"rrule"`
	// DTStart is the RFC 3339 instant the rule counts from (its seconds
	// also set the occurrences' seconds); default 2000-01-01T00:00:00 in
	// TimeZone.
	DTStart string `json:"dtstart,omitempty"`
	// Duration is how long each occurrence lasts, a Go duration such as
	// "8h" or "168h": more than zero, at most 31 days.
	Duration string `json:"duration"`
	// Environments and Applications scope the window; empty means all.
	Environments []string `json:"environments,omitempty"`
	Applications []string `json:"applications,omitempty"`
	// Reason is shown when the window blocks a promotion.
	Reason string `json:"reason,omitempty"`
}

// Status is what the system records about a window. It has no fields yet.
type Status struct{}

// Window is one named Window object, as Open and the gate see it.
type Window struct {
	Name string
	Spec Spec
}

// Register adds the Window kind to s.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    KindName,
		Plural:  "windows",
		Aliases: []string{"win"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(_ *resource.Object, spec any) error {
			w, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("window: spec has type %T, want *window.Spec", spec)
			}
			return Validate(*w)
		},
		Declarative: true,
	})
}

// compiled is a validated spec ready to evaluate.
type compiled struct {
	name     string
	spec     Spec
	rule     Rule
	dtstart  time.Time
	duration time.Duration
}

// Validate checks a window on its own. The error is a *resource.PathError
// naming the field at fault, e.g. spec.rrule. Unlike Open, it also refuses
// a rule that never starts, which costs a search of 400 years (a few
// milliseconds) that Open, run every minute, would repeat for nothing.
func Validate(s Spec) error {
	c, err := compile("", s)
	if err != nil {
		return err
	}
	starts := false
	c.rule.Between(c.dtstart, c.dtstart, c.dtstart.AddDate(cycleYears, 0, 0), func(time.Time) bool {
		starts = true
		return false
	})
	if !starts {
		return resource.Errorf("spec.rrule", "rrule %q has no start in the %d years from dtstart %s: check that its BY parts can meet (BYMONTH=2;BYMONTHDAY=30 never does) and that UNTIL is after dtstart",
			s.RRule, cycleYears, c.dtstart.Format(time.RFC3339))
	}
	return nil
}

func compile(name string, s Spec) (compiled, error) {
	c := compiled{name: name, spec: s}
	if s.Kind != Allow && s.Kind != Deny {
		return c, resource.Errorf("spec.kind", "kind %q is not allow or deny: allow windows are when promotions may happen, deny windows (freezes) when they may not", s.Kind)
	}
	if s.TimeZone == "" {
		return c, resource.Errorf("spec.timeZone", "timeZone is required: the IANA zone the rule's times are in, e.g. Europe/Stockholm or UTC")
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil || s.TimeZone == "Local" {
		return c, resource.Errorf("spec.timeZone", "timeZone %q is not an IANA time zone name such as Europe/Stockholm or UTC", s.TimeZone)
	}
	if c.rule, err = ParseRule(s.RRule); err != nil {
		return c, resource.Errorf("spec.rrule", "%v", err)
	}
	c.dtstart = time.Date(2000, 1, 1, 0, 0, 0, 0, loc)
	if s.DTStart != "" {
		t, err := time.Parse(time.RFC3339, s.DTStart)
		if err != nil {
			return c, resource.Errorf("spec.dtstart", "dtstart %q is not an RFC 3339 time such as 2026-01-05T09:00:00+01:00", s.DTStart)
		}
		c.dtstart = t.In(loc)
	}
	if s.Duration == "" {
		return c, resource.Errorf("spec.duration", "duration is required: how long each occurrence lasts, e.g. 8h")
	}
	if c.duration, err = time.ParseDuration(s.Duration); err != nil || c.duration <= 0 || c.duration > MaxDuration {
		return c, resource.Errorf("spec.duration", "duration %q must be a Go duration (e.g. 8h, 90m, 168h) greater than zero and at most 31 days (744h)", s.Duration)
	}
	for i, e := range s.Environments {
		if err := resource.ValidateName(e); err != nil {
			return c, resource.Errorf(fmt.Sprintf("spec.environments[%d]", i), "environment %v", err)
		}
	}
	for i, a := range s.Applications {
		if err := resource.ValidateName(a); err != nil {
			return c, resource.Errorf(fmt.Sprintf("spec.applications[%d]", i), "application %v", err)
		}
	}
	return c, nil
}

func (c compiled) applies(app, env string) bool {
	return (len(c.spec.Environments) == 0 || slices.Contains(c.spec.Environments, env)) &&
		(len(c.spec.Applications) == 0 || slices.Contains(c.spec.Applications, app))
}

// occurrence returns the start of the occurrence covering at, if any.
func (c compiled) occurrence(at time.Time) (time.Time, bool) {
	var last time.Time
	c.rule.Between(c.dtstart, at.Add(-c.duration+1), at.Add(1), func(t time.Time) bool {
		last = t
		return true
	})
	return last, !last.IsZero()
}

// describe names a window for messages: `deny window freeze-dec (Christmas freeze)`.
func (c compiled) describe() string {
	s := c.spec.Kind + " window " + c.name
	if c.spec.Reason != "" {
		s += " (" + c.spec.Reason + ")"
	}
	return s
}

// Decision is what Open found.
type Decision struct {
	// Open is true when a promotion may happen at the instant asked about.
	Open bool
	// Why says which window decided, e.g. "closed by deny window freeze-dec
	// (Christmas freeze)", "open inside allow window business-hours", "no
	// window applies".
	Why string
	// Next is when promotion next becomes possible when Open is false, in
	// the time zone of the first window that applies; zero if not within
	// Horizon. When Open is true it is at.
	Next time.Time
}

// Open decides whether app may be promoted to env at instant at, given
// every window ws: deny beats allow; if any allow window applies to (app,
// env), promotion is possible only inside one; with no windows applying it
// is always possible. When closed, it returns when promotion next becomes
// possible, looking up to Horizon ahead (zero if never within it). A window
// that does not validate is an error naming it; Open is pure.
func Open(ws []Window, app, env string, at time.Time) (open bool, why string, next time.Time, err error) {
	d, err := Decide(ws, app, env, at)
	return d.Open, d.Why, d.Next, err
}

// Decide is Open returning a Decision.
func Decide(ws []Window, app, env string, at time.Time) (Decision, error) {
	var cs []compiled
	for _, w := range ws {
		c, err := compile(w.Name, w.Spec)
		if err != nil {
			return Decision{}, fmt.Errorf("window %s: %w", w.Name, err)
		}
		if c.applies(app, env) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return Decision{Open: true, Why: "no window applies", Next: at}, nil
	}
	ok, why := state(cs, at)
	if ok {
		return Decision{Open: true, Why: why, Next: at}, nil
	}
	next := nextOpening(cs, at)
	if !next.IsZero() {
		next = next.In(cs[0].dtstart.Location())
	}
	return Decision{Why: why, Next: next}, nil
}

// nextOpening returns the first instant after at, within Horizon, at which
// no deny window and (when any allow window applies) some allow window is
// in effect; zero if there is none. The state changes only where an
// occurrence begins or ends, so it sweeps those edges in order, counting
// the allow and deny occurrences in effect.
func nextOpening(cs []compiled, at time.Time) time.Time {
	type edge struct {
		t           time.Time
		allow, deny int
	}
	var edges []edge
	end := at.Add(Horizon)
	anyAllow := false
	for _, c := range cs {
		a, d := 0, 0
		if c.spec.Kind == Allow {
			a, anyAllow = 1, true
		} else {
			d = 1
		}
		c.rule.Between(c.dtstart, at.Add(-c.duration+1), end, func(t time.Time) bool {
			edges = append(edges, edge{t, a, d}, edge{t.Add(c.duration), -a, -d})
			return true
		})
	}
	slices.SortStableFunc(edges, func(x, y edge) int { return x.t.Compare(y.t) })
	allow, deny := 0, 0
	for i, e := range edges {
		allow += e.allow
		deny += e.deny
		if i+1 < len(edges) && edges[i+1].t.Equal(e.t) {
			continue // judge an instant once every edge at it is counted
		}
		if e.t.After(at) && !e.t.After(end) && deny == 0 && (!anyAllow || allow > 0) {
			return e.t
		}
	}
	return time.Time{}
}

// state judges the windows that apply at one instant.
func state(cs []compiled, at time.Time) (bool, string) {
	var allows []string
	anyAllow := false
	for _, c := range cs {
		_, in := c.occurrence(at)
		if c.spec.Kind == Deny && in {
			return false, "closed by " + c.describe()
		}
		if c.spec.Kind == Allow {
			anyAllow = true
			if in {
				allows = append(allows, c.describe())
			}
		}
	}
	switch {
	case len(allows) > 0:
		return true, "open inside " + strings.Join(allows, ", ")
	case anyAllow:
		var names []string
		for _, c := range cs {
			if c.spec.Kind == Allow {
				names = append(names, c.name)
			}
		}
		return false, "outside every allow window (" + strings.Join(names, ", ") + ")"
	}
	return true, "no deny window is in effect"
}

// Load returns every Window object in r.
func Load(ctx context.Context, r store.Reader) ([]Window, error) {
	objs, err := r.List(ctx, KindName, nil)
	if err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
	}
	out := make([]Window, 0, len(objs))
	for _, o := range objs {
		w := Window{Name: o.Metadata.Name}
		if err := o.DecodeSpec(&w.Spec); err != nil {
			return nil, fmt.Errorf("window %s: %w", o.Metadata.Name, err)
		}
		out = append(out, w)
	}
	return out, nil
}
