package flag_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/flag"
)

func staleSpec(app, key, env string) flag.Spec {
	return flag.Spec{
		App: app, Environment: env, Key: key, Type: flag.Boolean,
		Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "on", Enabled: true,
	}
}

// split makes a spec serve both variants.
func split(s flag.Spec) flag.Spec {
	s.Fractional = []flag.Split{{Variant: "on", Weight: 50}, {Variant: "off", Weight: 50}}
	return s
}

func at(t time.Time) *time.Time { return &t }

func TestFindStale(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC)
	const d = 24 * time.Hour
	recent := at(t0.Add(60 * d)) // evaluated recently, relative to every now below
	type want struct {
		kind, since string
		days        int
		estimated   bool
	}
	for _, tc := range []struct {
		name   string
		in     flag.StaleInput
		now    time.Time
		want   []want
		reason string // a substring of the first finding's reason
		advice string // a substring of the first finding's suggestion
	}{
		{
			name: "uniform exactly at the release lifetime is not stale",
			in:   flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{UniformSince: at(t0), UniformVariant: "on", LastEvaluated: recent}, CreatedAt: t0},
			now:  t0.Add(40 * d),
		},
		{
			name:   "uniform one second past the release lifetime",
			in:     flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{UniformSince: at(t0), UniformVariant: "on", LastEvaluated: recent}, CreatedAt: t0},
			now:    t0.Add(40*d + time.Second),
			want:   []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 40}},
			reason: `serves "on" (true) to everyone since 2026-10-01 (40 days; lifetime 40 days)`,
			advice: `replace evaluations of a with true in shop's code, then remove the flag (airlock delete flag shop.a.prod)`,
		},
		{
			name: "operational: exactly 7 days is not stale",
			in: flag.StaleInput{Spec: func() flag.Spec { s := staleSpec("shop", "a", "prod"); s.Lifecycle = flag.Operational; return s }(),
				Status: flag.Status{UniformSince: at(t0), UniformVariant: "on", LastEvaluated: recent}, CreatedAt: t0},
			now: t0.Add(7 * d),
		},
		{
			name: "operational: 7 days and a second",
			in: flag.StaleInput{Spec: func() flag.Spec { s := staleSpec("shop", "a", "prod"); s.Lifecycle = flag.Operational; return s }(),
				Status: flag.Status{UniformSince: at(t0), UniformVariant: "on", LastEvaluated: recent}, CreatedAt: t0},
			now:    t0.Add(7*d + time.Second),
			want:   []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 7}},
			reason: "lifetime 7 days",
		},
		{
			name: "an explicit lifetime wins over the lifecycle",
			in: flag.StaleInput{Spec: func() flag.Spec {
				s := staleSpec("shop", "a", "prod")
				s.Lifecycle = flag.Operational
				s.Lifetime = "36h"
				return s
			}(),
				Status: flag.Status{UniformSince: at(t0), UniformVariant: "on", LastEvaluated: recent}, CreatedAt: t0},
			now:    t0.Add(36*time.Hour + time.Second),
			want:   []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 1}},
			reason: "(1 day; lifetime 36h0m0s)",
		},
		{
			name: "a disabled flag serves its default variant to everyone",
			in: flag.StaleInput{Spec: func() flag.Spec {
				s := split(staleSpec("shop", "a", "prod"))
				s.Enabled = false
				s.DefaultVariant = "off"
				return s
			}(),
				Status: flag.Status{UniformSince: at(t0), UniformVariant: "off", LastEvaluated: recent}, CreatedAt: t0},
			now:    t0.Add(57 * d),
			want:   []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 57}},
			reason: `serves "off" (false) to everyone since 2026-10-01 (57 days; lifetime 40 days)`,
			advice: "replace evaluations of a with false",
		},
		{
			name: "a split is never uniform, whatever the status says",
			in:   flag.StaleInput{Spec: split(staleSpec("shop", "a", "prod")), Status: flag.Status{UniformSince: at(t0), UniformVariant: "on", LastEvaluated: recent}, CreatedAt: t0},
			now:  t0.Add(80 * d),
		},
		{
			name:   "no uniformSince: the last update stands in",
			in:     flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{LastEvaluated: recent}, CreatedAt: t0, UpdatedAt: t0.Add(10 * d)},
			now:    t0.Add(50*d + time.Second),
			want:   []want{{kind: flag.StaleUniform, since: "2026-10-11", days: 40, estimated: true}},
			reason: "since at least 2026-10-11",
		},
		{
			name: "no uniformSince: exactly a lifetime after the last update is not stale",
			in:   flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{LastEvaluated: recent}, CreatedAt: t0, UpdatedAt: t0.Add(10 * d)},
			now:  t0.Add(50 * d),
		},
		{
			name: "no uniformSince and no update: the creation stands in",
			in:   flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{LastEvaluated: recent}, CreatedAt: t0},
			now:  t0.Add(41 * d),
			want: []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 41, estimated: true}},
		},
		{
			name: "a status naming another variant predates the spec: the last update stands in",
			in:   flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{UniformSince: at(t0), UniformVariant: "off", LastEvaluated: recent}, CreatedAt: t0, UpdatedAt: t0.Add(30 * d)},
			now:  t0.Add(45 * d),
		},
		{
			name: "evaluated exactly 30 days ago is not stale",
			in:   flag.StaleInput{Spec: split(staleSpec("shop", "a", "prod")), Status: flag.Status{LastEvaluated: at(t0)}, CreatedAt: t0.Add(-100 * d)},
			now:  t0.Add(30 * d),
		},
		{
			name:   "evaluated 30 days and a second ago",
			in:     flag.StaleInput{Spec: split(staleSpec("shop", "a", "prod")), Status: flag.Status{LastEvaluated: at(t0)}, CreatedAt: t0.Add(-100 * d)},
			now:    t0.Add(30*d + time.Second),
			want:   []want{{kind: flag.StaleUnused, since: "2026-10-01", days: 30}},
			reason: "not evaluated since 2026-10-01 (30 days; limit 30 days)",
			advice: "confirm that no client of shop evaluates a in prod any more, then remove the flag (airlock delete flag shop.a.prod)",
		},
		{
			name: "never evaluated, created exactly 30 days ago, is not stale",
			in:   flag.StaleInput{Spec: split(staleSpec("shop", "a", "prod")), CreatedAt: t0},
			now:  t0.Add(30 * d),
		},
		{
			name:   "never evaluated, created 30 days and a second ago",
			in:     flag.StaleInput{Spec: split(staleSpec("shop", "a", "prod")), CreatedAt: t0},
			now:    t0.Add(30*d + time.Second),
			want:   []want{{kind: flag.StaleUnused, since: "2026-10-01", days: 30}},
			reason: "never evaluated since it was created on 2026-10-01",
		},
		{
			name: "uniform and unused: both findings, uniform first",
			in:   flag.StaleInput{Spec: staleSpec("shop", "a", "prod"), Status: flag.Status{UniformSince: at(t0), UniformVariant: "on"}, CreatedAt: t0},
			now:  t0.Add(41 * d),
			want: []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 41}, {kind: flag.StaleUnused, since: "2026-10-01", days: 41}},
		},
		{
			name: "a long value is named, not quoted",
			in: flag.StaleInput{Spec: flag.Spec{App: "shop", Environment: "prod", Key: "banner", Type: flag.String,
				Variants: map[string]any{"long": strings.Repeat("x", 100)}, DefaultVariant: "long", Enabled: true},
				Status: flag.Status{UniformSince: at(t0), UniformVariant: "long", LastEvaluated: recent}, CreatedAt: t0},
			now:    t0.Add(41 * d),
			want:   []want{{kind: flag.StaleUniform, since: "2026-10-01", days: 41}},
			reason: `serves "long" to everyone`,
			advice: `replace evaluations of banner with the value of variant "long" in shop's code`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := flag.FindStale([]flag.StaleInput{tc.in}, tc.now)
			if len(got) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Kind != w.kind || g.Since.Format(time.DateOnly) != w.since || g.Days != w.days || g.SinceEstimated != w.estimated {
					t.Errorf("finding %d: %s since %s, %d days, estimated %v; want %s since %s, %d days, estimated %v",
						i, g.Kind, g.Since.Format(time.DateOnly), g.Days, g.SinceEstimated, w.kind, w.since, w.days, w.estimated)
				}
				if g.App != tc.in.Spec.App || g.Key != tc.in.Spec.Key || g.Environment != tc.in.Spec.Environment {
					t.Errorf("finding %d names %s/%s/%s", i, g.App, g.Key, g.Environment)
				}
			}
			if tc.reason != "" && !strings.Contains(got[0].Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", got[0].Reason, tc.reason)
			}
			if tc.advice != "" && !strings.Contains(got[0].Suggestion, tc.advice) {
				t.Errorf("suggestion %q, want it to contain %q", got[0].Suggestion, tc.advice)
			}
		})
	}
}

// TestFindStaleOrder: findings come sorted by application, key,
// environment and kind, whatever the input order.
func TestFindStaleOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(100 * 24 * time.Hour)
	in := func(app, key, env string) flag.StaleInput {
		return flag.StaleInput{Name: flag.Name(app, key, env), Spec: staleSpec(app, key, env), CreatedAt: t0}
	}
	got := flag.FindStale([]flag.StaleInput{
		in("web", "a", "prod"), in("shop", "b", "prod"), in("shop", "a", "staging"), in("shop", "a", "prod"),
	}, now)
	var order []string
	for _, f := range got {
		order = append(order, f.Name+" "+f.Kind)
	}
	want := []string{
		"shop.a.prod uniform", "shop.a.prod unused",
		"shop.a.staging uniform", "shop.a.staging unused",
		"shop.b.prod uniform", "shop.b.prod unused",
		"web.a.prod uniform", "web.a.prod unused",
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order\n%v\nwant\n%v", order, want)
	}
	if got[0].Value != true || got[0].Variant != "on" || got[0].LimitDays != 40 || got[1].LimitDays != 30 {
		t.Fatalf("first findings: %+v", got[:2])
	}
}
