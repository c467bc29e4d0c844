package flag

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Kinds of stale finding.
const (
	// StaleUniform is a flag that has served one variant to everyone for
	// longer than its lifetime.
	StaleUniform = "uniform"
	// StaleUnused is a flag nobody has evaluated for longer than
	// UnusedAfter.
	StaleUnused = "unused"
)

// UnusedAfter is how long a flag may go without an evaluation before it is
// reported stale.
const UnusedAfter = 30 * 24 * time.Hour

// day is the unit findings count in.
const day = 24 * time.Hour

// StaleInput is one stored flag as stale detection reads it.
type StaleInput struct {
	Name      string
	Spec      Spec
	Status    Status
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StaleFinding is one reason to remove one flag. A flag may have two: one
// of each kind.
type StaleFinding struct {
	Name        string `json:"name"`
	App         string `json:"app"`
	Environment string `json:"environment"`
	Key         string `json:"key"`
	// Kind is StaleUniform or StaleUnused.
	Kind string `json:"kind"`
	// Since is when the flag began serving one variant to everyone, or
	// its last evaluation (the UTC day), or, never evaluated, its
	// creation. Days counts whole days from Since to now.
	Since time.Time `json:"since"`
	Days  int       `json:"days"`
	// SinceEstimated is set when the status did not record since when a
	// uniform flag is uniform: the flag's last update (or its creation)
	// stands in, which errs late, never early.
	SinceEstimated bool `json:"sinceEstimated,omitempty"`
	// LimitDays is the limit exceeded: the lifetime for a uniform flag,
	// 30 for an unused one, in days (rounded down).
	LimitDays int `json:"limitDays"`
	// Variant and Value are what a uniform flag serves everyone.
	Variant string `json:"variant,omitempty"`
	Value   any    `json:"value,omitempty"`
	// Reason says what makes the flag stale; Suggestion what to do.
	Reason     string `json:"reason"`
	Suggestion string `json:"suggestion"`
}

// FindStale returns the stale findings of flags at now, sorted by
// application, key, environment and kind (uniform first). A flag is
// stale when its spec serves one variant to everyone (see Uniform) for
// longer than its lifetime (Spec.LifetimeOf), and when it was last
// evaluated more than UnusedAfter ago, or never and was created more than
// UnusedAfter ago. Exactly at a limit is not stale.
//
// Whether a flag is uniform is decided from its spec; the status says
// since when. When the status does not say, or names another variant (it
// predates the spec), the flag's UpdatedAt, or CreatedAt when that is
// zero, stands in and the finding is marked SinceEstimated. FindStale
// performs no I/O.
func FindStale(flags []StaleInput, now time.Time) []StaleFinding {
	var out []StaleFinding
	for _, f := range flags {
		if u, ok := uniformFinding(f, now); ok {
			out = append(out, u)
		}
		if u, ok := unusedFinding(f, now); ok {
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.App != b.App {
			return a.App < b.App
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Environment != b.Environment {
			return a.Environment < b.Environment
		}
		if a.Kind != b.Kind {
			return a.Kind == StaleUniform
		}
		return a.Name < b.Name
	})
	return out
}

func newFinding(f StaleInput, kind string, since, now time.Time) StaleFinding {
	return StaleFinding{
		Name: f.Name, App: f.Spec.App, Environment: f.Spec.Environment, Key: f.Spec.Key,
		Kind: kind, Since: since.UTC(), Days: int(now.Sub(since) / day),
	}
}

func uniformFinding(f StaleInput, now time.Time) (StaleFinding, bool) {
	variant, ok := Uniform(f.Spec)
	if !ok {
		return StaleFinding{}, false
	}
	var since time.Time
	estimated := false
	if st := f.Status; st.UniformSince != nil && !st.UniformSince.IsZero() && st.UniformVariant == variant {
		since = *st.UniformSince
	} else {
		since, estimated = f.UpdatedAt, true
		if since.IsZero() {
			since = f.CreatedAt
		}
		if since.IsZero() {
			return StaleFinding{}, false // nothing says since when
		}
	}
	lifetime := f.Spec.LifetimeOf()
	if now.Sub(since) <= lifetime {
		return StaleFinding{}, false
	}
	value := f.Spec.Variants[variant]
	s := newFinding(f, StaleUniform, since, now)
	s.SinceEstimated, s.LimitDays = estimated, int(lifetime/day)
	s.Variant, s.Value = variant, value
	at := "since " + s.Since.Format(time.DateOnly)
	if estimated {
		at = "since at least " + s.Since.Format(time.DateOnly)
	}
	serves, with := fmt.Sprintf("%q", variant), fmt.Sprintf("the value of variant %q", variant)
	if v, ok := valueText(value); ok {
		serves, with = fmt.Sprintf("%q (%s)", variant, v), v
	}
	s.Reason = fmt.Sprintf("serves %s to everyone %s (%s; lifetime %s)",
		serves, at, days(s.Days), describeLifetime(lifetime))
	s.Suggestion = fmt.Sprintf("replace evaluations of %s with %s in %s's code, then remove the flag (%s)",
		f.Spec.Key, with, f.Spec.App, deleteCommand(f))
	return s, true
}

func unusedFinding(f StaleInput, now time.Time) (StaleFinding, bool) {
	var s StaleFinding
	if last := f.Status.LastEvaluated; last != nil && !last.IsZero() {
		if now.Sub(*last) <= UnusedAfter {
			return StaleFinding{}, false
		}
		s = newFinding(f, StaleUnused, *last, now)
		s.Reason = fmt.Sprintf("not evaluated since %s (%s; limit %s)",
			s.Since.Format(time.DateOnly), days(s.Days), days(int(UnusedAfter/day)))
	} else {
		if f.CreatedAt.IsZero() || now.Sub(f.CreatedAt) <= UnusedAfter {
			return StaleFinding{}, false
		}
		s = newFinding(f, StaleUnused, f.CreatedAt, now)
		s.Reason = fmt.Sprintf("never evaluated since it was created on %s (%s; limit %s)",
			s.Since.Format(time.DateOnly), days(s.Days), days(int(UnusedAfter/day)))
	}
	s.LimitDays = int(UnusedAfter / day)
	s.Suggestion = fmt.Sprintf("confirm that no client of %s evaluates %s in %s any more, then remove the flag (%s)",
		f.Spec.App, f.Spec.Key, f.Spec.Environment, deleteCommand(f))
	return s, true
}

// deleteCommand is the CLI command that removes the flag.
func deleteCommand(f StaleInput) string {
	name := f.Name
	if name == "" {
		name = Name(f.Spec.App, f.Spec.Key, f.Spec.Environment)
	}
	return "airlock delete flag " + name
}

// maxValueText is the longest variant value a message quotes.
const maxValueText = 60

// valueText renders a variant's value as JSON (true, "Welcome", 3); it
// reports false when that is too long to quote.
func valueText(v any) (string, bool) {
	b, err := json.Marshal(v)
	if err != nil || len(b) > maxValueText {
		return "", false
	}
	return string(b), true
}

func describeLifetime(d time.Duration) string {
	if d%day == 0 {
		return days(int(d / day))
	}
	return d.String()
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
