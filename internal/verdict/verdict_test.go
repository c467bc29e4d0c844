package verdict_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/verdict"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T) (store.Store, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, c
}

func spec(app, env string, o verdict.Outcome) verdict.Spec {
	return verdict.Spec{App: app, Environment: env, Subject: verdict.Subject{Kind: "FlagPlan", Name: "shop.new-checkout.prod"},
		Outcome: o, Summary: "error rate " + string(o), Reasons: []string{"http 5xx ratio 4.1% > 1%"}, Judge: "analysis/error-rate"}
}

func record(t *testing.T, st store.Store, name string, s verdict.Spec) {
	t.Helper()
	o, err := verdict.New(name, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(context.Background(), store.Actor{Name: "system:analysis"}, func(tx store.Tx) error {
		_, err := tx.Create(context.Background(), o)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func override(t *testing.T, st store.Store, name string, to verdict.Outcome) {
	t.Helper()
	ctx := context.Background()
	if err := st.Write(ctx, store.Actor{Name: "ana"}, func(tx store.Tx) error {
		o, err := tx.Get(ctx, verdict.Kind, name)
		if err != nil {
			return err
		}
		if err := verdict.SetOverride(o, verdict.Override{By: "ana", Reason: "false alarm", At: tx.Now(), Outcome: to}); err != nil {
			return err
		}
		_, err = tx.Update(ctx, o)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func latest(t *testing.T, st store.Store, since time.Time) string {
	t.Helper()
	o, err := verdict.LatestBad(context.Background(), st, "shop", "prod", since)
	if err != nil {
		t.Fatal(err)
	}
	if o == nil {
		return ""
	}
	return o.Metadata.Name
}

func TestLatestBad(t *testing.T) {
	t.Parallel()
	st, c := openStore(t)
	start := c.Now()
	if got := latest(t, st, start.Add(-time.Hour)); got != "" {
		t.Fatalf("no verdicts: LatestBad = %q, want none", got)
	}
	c.Add(time.Minute)
	record(t, st, "v1", spec("shop", "prod", verdict.Fail))
	c.Add(time.Minute)
	record(t, st, "v2", spec("shop", "prod", verdict.Fail))
	c.Add(time.Minute)
	record(t, st, "v3", spec("shop", "prod", verdict.Pass))
	record(t, st, "v4", spec("shop", "prod", verdict.Inconclusive))
	record(t, st, "v5", spec("shop", "staging", verdict.Fail))
	record(t, st, "v6", spec("cart", "prod", verdict.Fail))

	if got := latest(t, st, start); got != "v2" {
		t.Errorf("LatestBad = %q, want v2 (the newest fail of shop in prod)", got)
	}
	if got := latest(t, st, start.Add(2*time.Minute)); got != "" {
		t.Errorf("since after v2: LatestBad = %q, want none (only verdicts created after since count)", got)
	}
	if got := latest(t, st, start.Add(time.Minute+30*time.Second)); got != "v2" {
		t.Errorf("since between v1 and v2: LatestBad = %q, want v2", got)
	}

	override(t, st, "v2", verdict.Pass)
	if got := latest(t, st, start); got != "v1" {
		t.Errorf("v2 overridden to pass: LatestBad = %q, want v1", got)
	}
	if o, _ := st.Get(context.Background(), verdict.Kind, "v2"); o.Metadata.Labels[verdict.OutcomeLabel] != "pass" {
		t.Errorf("v2's outcome label after the override = %q, want pass", o.Metadata.Labels[verdict.OutcomeLabel])
	}
	override(t, st, "v3", verdict.Fail)
	if got := latest(t, st, start); got != "v3" {
		t.Errorf("v3 overridden to fail: LatestBad = %q, want v3", got)
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	v := verdict.Verdict{Spec: spec("shop", "prod", verdict.Fail)}
	if v.Effective() != verdict.Fail {
		t.Errorf("Effective without override = %s, want fail", v.Effective())
	}
	v.Status.Override = &verdict.Override{By: "ana", Outcome: verdict.Pass}
	if v.Effective() != verdict.Pass {
		t.Errorf("Effective with a pass override = %s, want pass", v.Effective())
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 501)
	tests := []struct {
		name   string
		change func(*verdict.Spec)
		path   string
	}{
		{"valid", func(*verdict.Spec) {}, ""},
		{"no app", func(s *verdict.Spec) { s.App = "" }, "spec.app"},
		{"bad env", func(s *verdict.Spec) { s.Environment = "Prod!" }, "spec.environment"},
		{"no subject kind", func(s *verdict.Spec) { s.Subject.Kind = "" }, "spec.subject.kind"},
		{"bad subject name", func(s *verdict.Spec) { s.Subject.Name = "a b" }, "spec.subject.name"},
		{"unknown outcome", func(s *verdict.Spec) { s.Outcome = "bad" }, "spec.outcome"},
		{"empty outcome", func(s *verdict.Spec) { s.Outcome = "" }, "spec.outcome"},
		{"long summary", func(s *verdict.Spec) { s.Summary = long }, "spec.summary"},
		{"summary at limit", func(s *verdict.Spec) { s.Summary = long[:500] }, ""},
		{"too many reasons", func(s *verdict.Spec) { s.Reasons = make([]string, 51) }, "spec.reasons"},
		{"50 reasons", func(s *verdict.Spec) { s.Reasons = make([]string, 50) }, ""},
		{"long reason", func(s *verdict.Spec) { s.Reasons = []string{"ok", long} }, "spec.reasons[1]"},
		{"no judge", func(s *verdict.Spec) { s.Judge = " " }, "spec.judge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec("shop", "prod", verdict.Fail)
			tt.change(&s)
			err := verdict.Validate(s)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var pe *resource.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate = %v, want a *resource.PathError at %s", err, tt.path)
			}
			if pe.Path != tt.path {
				t.Errorf("path = %s, want %s (%v)", pe.Path, tt.path, err)
			}
		})
	}
}

func TestRegisterDecodesAndValidates(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	verdict.Register(s)
	k, ok := s.Lookup("verdicts")
	if !ok || k.Name != verdict.Kind || k.Declarative {
		t.Fatalf("Lookup(verdicts) = %+v, %v; want the non-declarative Verdict kind", k, ok)
	}
	bad := spec("shop", "prod", "maybe")
	if err := k.Validate(nil, &bad); err == nil {
		t.Error("Validate accepted outcome maybe")
	}
}

func TestSetOverrideRefuses(t *testing.T) {
	t.Parallel()
	for _, ov := range []verdict.Override{
		{By: "ana", Reason: "x", Outcome: "maybe"},
		{By: " ", Reason: "x", Outcome: verdict.Pass},
		{By: "ana", Reason: "", Outcome: verdict.Pass},
	} {
		o, err := verdict.New("v", spec("shop", "prod", verdict.Fail))
		if err != nil {
			t.Fatal(err)
		}
		if err := verdict.SetOverride(o, ov); err == nil {
			t.Errorf("SetOverride(%+v) = nil, want an error", ov)
		}
	}
}

func TestNewSetsLabels(t *testing.T) {
	t.Parallel()
	o, err := verdict.New("shop-prod-1", spec("shop", "prod", verdict.Fail))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app": "shop", "environment": "prod", "outcome": "fail"}
	for k, v := range want {
		if o.Metadata.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, o.Metadata.Labels[k], v)
		}
	}
}
