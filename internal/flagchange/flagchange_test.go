package flagchange_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flagchange"
	"github.com/airlock-dev/airlock/internal/server/servertest"
	"github.com/airlock-dev/airlock/internal/store"
)

type world struct {
	t     *testing.T
	clock *servertest.Clock
	st    store.Store
	deps  api.Deps
}

// newWorld is a real SQLite store wired as the server wires it, at a
// Monday 10:00 UTC.
func newWorld(t *testing.T) *world {
	t.Helper()
	sw := servertest.New(t, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	return &world{t: t, clock: sw.Clock, st: sw.Store, deps: sw.Deps}
}

var admin = store.Actor{Name: "admin"}

func (w *world) apply(actor store.Actor, doc string) []catalog.Result {
	w.t.Helper()
	objs, err := w.deps.Scheme.Decode("test.yaml", []byte(doc))
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := w.deps.Catalog.Apply(context.Background(), actor, objs, false)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func (w *world) flag(name string) (flag.Spec, flag.Status, int64) {
	w.t.Helper()
	s, st, o := servertest.Get[flag.Spec, flag.Status](w.t, w.st, flag.KindName, name)
	return s, st, o.Metadata.Revision
}

func (w *world) change(name string) (flagchange.Spec, flagchange.Status) {
	w.t.Helper()
	s, st, _ := servertest.Get[flagchange.Spec, flagchange.Status](w.t, w.st, flagchange.Kind, name)
	return s, st
}

func (w *world) vote(who string, roles []string, change, decision string) error {
	_, err := w.deps.FlagChanges.Vote(context.Background(), store.Actor{Name: who}, flagchange.VoteRequest{Change: change, Decision: decision, Reason: "test", Roles: roles})
	return err
}

const envs = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, isolation: {level: labels, network: staging-net, credentials: staging-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec: {tier: production, data: production, isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: one machine only}}}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  stages:
    - environment: staging
    - environment: prod
      gates:
        - type: approvals
          require: {tech-lead: 1, sre: 1}
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec: {owners: [team-shop], pipeline: default}
`

func flagDoc(env, split string) string {
	return `apiVersion: airlock.dev/v1
kind: Flag
metadata: {name: shop.new-checkout.` + env + `}
spec:
  app: shop
  environment: ` + env + `
  key: new-checkout
  type: boolean
  variants: {"on": true, "off": false}
  defaultVariant: "off"
  enabled: true
  fractional: ` + split + `
`
}

const quarter = `[{variant: "on", weight: 25}, {variant: "off", weight: 75}]`

func TestPolicyFor(t *testing.T) {
	w := newWorld(t)
	w.apply(admin, envs)
	ctx := context.Background()
	for _, tc := range []struct {
		app, env string
		want     string
	}{
		{"shop", "prod", "1 sre approval, 1 tech-lead approval"}, // the pipeline's approvals into prod
		{"other", "prod", "1 tech-lead approval"},                // no such application: the production default
		{"shop", "staging", ""},                                  // not production: none
	} {
		p, err := flagchange.PolicyFor(ctx, w.st, tc.app, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(p.Require); got != tc.want {
			t.Errorf("%s in %s: require %q, want %q (%s)", tc.app, tc.env, got, tc.want, p.Source)
		}
		if !p.Windows || p.MaxAge != 72*time.Hour {
			t.Errorf("%s in %s: windows %v, maxAge %s", tc.app, tc.env, p.Windows, p.MaxAge)
		}
	}
	// The environment's own policy wins, in any tier.
	w.apply(admin, strings.Replace(envs, "spec: {tier: staging,", "spec: {flagChanges: {approvals: {security: 2}, maxAge: 1h, ignoreWindows: true}, tier: staging,", 1))
	p, err := flagchange.PolicyFor(ctx, w.st, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if describe(p.Require) != "2 security approval" || p.MaxAge != time.Hour || p.Windows {
		t.Errorf("staging with its own policy: %+v", p)
	}
}

func describe(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return flagchange.Judge(flagchange.Spec{}, flagchange.Status{Require: m}, time.Now()).Missing
}

func TestApprovalAppliesOnlyOntoItsRevision(t *testing.T) {
	w := newWorld(t)
	w.apply(admin, envs)
	res := w.apply(admin, flagDoc("prod", quarter))
	if res[0].Action != catalog.Proposed || res[0].Change != "fch-20261123-001" {
		t.Fatalf("apply of a prod flag: %+v", res[0])
	}
	if _, err := w.st.Get(context.Background(), flag.KindName, "shop.new-checkout.prod"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a proposed flag exists before approval: %v", err)
	}
	// The proposer, and a role not asked for, do not count.
	var pe *catalog.PolicyError
	if err := w.vote("admin", []string{"tech-lead"}, "fch-20261123-001", flagchange.Approve); !errors.As(err, &pe) {
		t.Fatalf("self-approval: %v", err)
	}
	if err := w.vote("eve", []string{"deployer"}, "fch-20261123-001", flagchange.Approve); !errors.As(err, &pe) {
		t.Fatalf("approval without a required role: %v", err)
	}
	// One person holding both roles fills one slot.
	if err := w.vote("lead", []string{"tech-lead", "sre"}, "fch-20261123-001", flagchange.Approve); err != nil {
		t.Fatal(err)
	}
	if _, st := w.change("fch-20261123-001"); st.Phase != flagchange.Pending || !strings.Contains(st.Missing, "1 ") {
		t.Fatalf("after one approval: %+v", st)
	}
	// An approval older than maxAge no longer counts.
	w.clock.Add(73 * time.Hour)
	if err := w.vote("oncall", []string{"sre"}, "fch-20261123-001", flagchange.Approve); err != nil {
		t.Fatal(err)
	}
	if _, st := w.change("fch-20261123-001"); st.Phase != flagchange.Pending {
		t.Fatalf("with an expired approval: %+v", st)
	}
	if err := w.vote("lead2", []string{"tech-lead"}, "fch-20261123-001", flagchange.Approve); err != nil {
		t.Fatal(err)
	}
	spec, st := w.change("fch-20261123-001")
	if st.Phase != flagchange.Applied || st.AppliedRevision == 0 || spec.Operation != flagchange.Create || spec.Before != nil {
		t.Fatalf("after two approvals: %+v %+v", spec, st)
	}
	fs, fst, rev := w.flag("shop.new-checkout.prod")
	if !fs.Enabled || fst.Change != "fch-20261123-001" || rev != st.AppliedRevision || fst.UniformSince != nil {
		t.Fatalf("applied flag: %+v %+v rev %d", fs, fst, rev)
	}

	// Two changes against one revision: the first applied supersedes the other.
	res1 := w.apply(store.Actor{Name: "dev"}, flagDoc("prod", `[{variant: "on", weight: 50}, {variant: "off", weight: 50}]`))
	res2 := w.apply(store.Actor{Name: "dev2"}, flagDoc("prod", `[{variant: "on", weight: 100}, {variant: "off", weight: 0}]`))
	for _, r := range []string{res2[0].Change, res1[0].Change} {
		if err := w.vote("lead", []string{"tech-lead"}, r, flagchange.Approve); err != nil {
			t.Fatal(err)
		}
		if err := w.vote("oncall", []string{"sre"}, r, flagchange.Approve); err != nil {
			t.Fatal(err)
		}
	}
	if _, st := w.change(res2[0].Change); st.Phase != flagchange.Applied {
		t.Fatalf("first approved: %+v", st)
	}
	if _, st := w.change(res1[0].Change); st.Phase != flagchange.Superseded || !strings.Contains(st.Message, "propose it again") {
		t.Fatalf("second approved: %+v", st)
	}
	fs, fst, _ = w.flag("shop.new-checkout.prod")
	if fs.Fractional[0].Weight != 100 || fst.UniformVariant != "on" || fst.UniformSince == nil || !fst.UniformSince.Equal(w.clock.Now()) {
		t.Fatalf("flag after the 100%% change: %+v %+v", fs.Fractional, fst)
	}
}

// A freeze holds an approved change back until it opens, and refuses a
// change needing no approval; a plan's step skips approvals, not windows.
func TestWindowsHoldFlagChanges(t *testing.T) {
	w := newWorld(t)
	w.apply(admin, envs)
	w.apply(admin, flagDoc("staging", quarter))
	w.apply(admin, `apiVersion: airlock.dev/v1
kind: Window
metadata: {name: freeze}
spec: {kind: deny, timeZone: UTC, rrule: "FREQ=DAILY;BYHOUR=10;BYMINUTE=0", duration: 2h, environments: [staging, prod], reason: release train}
`)
	ctx := context.Background()
	objs, err := w.deps.Scheme.Decode("t.yaml", []byte(flagDoc("staging", `[{variant: "on", weight: 50}, {variant: "off", weight: 50}]`)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.deps.Catalog.Apply(ctx, admin, objs, false)
	var pe *catalog.PolicyError
	if !errors.As(err, &pe) || !errors.Is(err, flagchange.ErrWindowClosed) || !strings.Contains(err.Error(), "closed by deny window freeze") {
		t.Fatalf("staging change in a freeze: %v", err)
	}
	if fs, _, _ := w.flag("shop.new-checkout.staging"); fs.Fractional[0].Weight != 25 {
		t.Fatalf("a refused change changed the flag: %+v", fs.Fractional)
	}
	// A plan's step waits for the window too.
	err = w.st.Write(ctx, store.Actor{Name: "system:flag-plan"}, func(tx store.Tx) error {
		fs, _, _ := w.flag("shop.new-checkout.staging")
		fs.Fractional = []flag.Split{{Variant: "on", Weight: 10}, {Variant: "off", Weight: 90}}
		return flagchange.ApplyPlanned(ctx, tx, store.Actor{Name: "system:flag-plan"}, "rollout", "shop.new-checkout.staging", fs, "step 2")
	})
	if !errors.Is(err, flagchange.ErrWindowClosed) {
		t.Fatalf("planned step in a freeze: %v", err)
	}

	res := w.apply(admin, flagDoc("prod", quarter))
	for _, v := range []struct{ who, role string }{{"lead", "tech-lead"}, {"oncall", "sre"}} {
		if err := w.vote(v.who, []string{v.role}, res[0].Change, flagchange.Approve); err != nil {
			t.Fatal(err)
		}
	}
	if _, st := w.change(res[0].Change); st.Phase != flagchange.Approved || !strings.Contains(st.Message, "until 2026-11-23T12:00:00Z") {
		t.Fatalf("approved in a freeze: %+v", st)
	}
	if n, err := w.deps.FlagChanges.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("RunOnce in the freeze: %d, %v", n, err)
	}
	w.clock.Add(2 * time.Hour)
	if n, err := w.deps.FlagChanges.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce after the freeze: %d, %v", n, err)
	}
	if _, st := w.change(res[0].Change); st.Phase != flagchange.Applied {
		t.Fatalf("after the freeze: %+v", st)
	}
	// Now open: a planned step applies without approvals in staging; in
	// prod a plan must have been approved first.
	err = w.st.Write(ctx, store.Actor{Name: "system:flag-plan"}, func(tx store.Tx) error {
		fs, _, _ := w.flag("shop.new-checkout.staging")
		fs.Fractional = []flag.Split{{Variant: "on", Weight: 30}, {Variant: "off", Weight: 70}}
		return flagchange.ApplyPlanned(ctx, tx, store.Actor{Name: "system:flag-plan"}, "rollout", "shop.new-checkout.staging", fs, "step 2")
	})
	if err != nil {
		t.Fatal(err)
	}
	fs, fst, _ := w.flag("shop.new-checkout.staging")
	spec, st := w.change(fst.Change)
	if fs.Fractional[0].Weight != 30 || spec.Origin != "plan rollout" || st.Phase != flagchange.Applied || st.Message != "approved as part of plan rollout" || fst.Plan != "rollout" {
		t.Fatalf("planned step: %+v %+v %+v %+v", fs.Fractional, spec, st, fst)
	}
	err = w.st.Write(ctx, store.Actor{Name: "system:flag-plan"}, func(tx store.Tx) error {
		fs, _, _ := w.flag("shop.new-checkout.prod")
		fs.Fractional = []flag.Split{{Variant: "on", Weight: 30}, {Variant: "off", Weight: 70}}
		return flagchange.ApplyPlanned(ctx, tx, store.Actor{Name: "system:flag-plan"}, "rollout", "shop.new-checkout.prod", fs, "step 2")
	})
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "plan rollout was never approved") {
		t.Fatalf("a plan step in prod without the plan's approval: %v", err)
	}
}

// TestPlanApprovedByItsFirstStep: applying a plan of a production flag
// proposes its first step; approving that applies the step and approves
// the plan, whose later steps then apply without approvals.
func TestPlanApprovedByItsFirstStep(t *testing.T) {
	w := newWorld(t)
	w.apply(admin, envs)
	res := w.apply(admin, flagDoc("prod", quarter))
	for _, v := range []struct{ who, role string }{{"lead", "tech-lead"}, {"oncall", "sre"}} {
		if err := w.vote(v.who, []string{v.role}, res[0].Change, flagchange.Approve); err != nil {
			t.Fatal(err)
		}
	}
	planDoc := `apiVersion: airlock.dev/v1
kind: FlagPlan
metadata: {name: checkout}
spec:
  flag: shop.new-checkout.prod
  variant: "on"
  steps: [{percent: 1}, {percent: 10}, {percent: 100}]
`
	res = w.apply(store.Actor{Name: "dev"}, planDoc)
	if res[0].Action != catalog.Proposed || !strings.Contains(res[0].Message, "the plan starts once its first step is approved") {
		t.Fatalf("apply of a prod plan: %+v", res[0])
	}
	start := res[0].Change
	if spec, _ := w.change(start); spec.Origin != "plan checkout start" || spec.After.Fractional[0].Weight != 1 {
		t.Fatalf("start change: %+v", spec)
	}
	ctx := context.Background()
	step := func(weight float64) error {
		return w.st.Write(ctx, store.Actor{Name: "system:flag-plan"}, func(tx store.Tx) error {
			o, err := tx.Get(ctx, flag.KindName, "shop.new-checkout.prod")
			if err != nil {
				return err
			}
			var fs flag.Spec
			if err := o.DecodeSpec(&fs); err != nil {
				return err
			}
			fs.Fractional = []flag.Split{{Variant: "on", Weight: weight}, {Variant: "off", Weight: 100 - weight}}
			return flagchange.ApplyPlanned(ctx, tx, store.Actor{Name: "system:flag-plan"}, "checkout", "shop.new-checkout.prod", fs, "step")
		})
	}
	if err := step(1); !errors.Is(err, flagchange.ErrAwaitingApproval) || !strings.Contains(err.Error(), "its start, flag change "+start) {
		t.Fatalf("step 0 before approval: %v", err)
	}
	if err := w.vote("dev", []string{"tech-lead"}, start, flagchange.Approve); err == nil {
		t.Fatal("the plan's author approved its start")
	}
	for _, v := range []struct{ who, role string }{{"lead", "tech-lead"}, {"oncall", "sre"}} {
		if err := w.vote(v.who, []string{v.role}, start, flagchange.Approve); err != nil {
			t.Fatal(err)
		}
	}
	fs, fst, rev := w.flag("shop.new-checkout.prod")
	if fs.Fractional[0].Weight != 1 || fst.Plan != "checkout" {
		t.Fatalf("after approving the start: %+v %+v", fs.Fractional, fst)
	}
	if err := step(1); err != nil {
		t.Fatalf("step 0 after approval: %v", err)
	}
	if _, _, rev2 := w.flag("shop.new-checkout.prod"); rev2 != rev {
		t.Fatalf("re-applying the approved first step wrote the flag again (revision %d → %d)", rev, rev2)
	}
	if err := step(10); err != nil {
		t.Fatalf("step 1: %v", err)
	}
	fs, fst, _ = w.flag("shop.new-checkout.prod")
	spec, st := w.change(fst.Change)
	if fs.Fractional[0].Weight != 10 || spec.Origin != "plan checkout" || st.Phase != flagchange.Applied {
		t.Fatalf("step 1: %+v %+v %+v", fs.Fractional, spec, st)
	}
}

func TestWritesAreAuditedWithBeforeAndAfter(t *testing.T) {
	w := newWorld(t)
	w.apply(admin, envs)
	w.apply(admin, flagDoc("staging", quarter))
	w.apply(store.Actor{Name: "admin", Reason: "widen"}, flagDoc("staging", `[{variant: "on", weight: 50}, {variant: "off", weight: 50}]`))
	if _, err := w.deps.Catalog.DeleteResult(context.Background(), admin, flag.KindName, "shop.new-checkout.staging", 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := w.st.Audit().Entries(context.Background(), store.AuditFilter{Kind: flag.KindName}, func(e audit.Entry) error {
		got = append(got, e.Action+": "+e.Reason)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create: flag change fch-20261123-001: created (enabled, default off, split on 25 / off 75)",
		"update: widen; flag change fch-20261123-002: split: on 25 / off 75 → on 50 / off 50",
		"delete: flag change fch-20261123-003: deleted (was enabled, default off, split on 50 / off 50)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	spec, _ := w.change("fch-20261123-002")
	if spec.Before == nil || spec.After == nil || spec.Before.Fractional[0].Weight != 25 || spec.After.Fractional[0].Weight != 50 || spec.BaseRevision == 0 {
		t.Errorf("change record: %+v", spec)
	}
}

func TestSummarize(t *testing.T) {
	base := flag.Spec{Type: flag.Boolean, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "off", Enabled: true,
		Targeting: []flag.Rule{{Name: "staff", When: &flag.Condition{Segment: "internal"}, Variant: "on"}}}
	for _, tc := range []struct {
		name string
		edit func(*flag.Spec)
		want string
	}{
		{"kill switch", func(s *flag.Spec) { s.Enabled = false }, "enabled: true → false"},
		{"default", func(s *flag.Spec) { s.DefaultVariant = "on" }, "defaultVariant: off → on"},
		{"split added", func(s *flag.Spec) {
			s.Fractional = []flag.Split{{Variant: "on", Weight: 1}, {Variant: "off", Weight: 99}}
		}, "split: none → on 1 / off 99"},
		{"rule condition", func(s *flag.Spec) { s.Targeting[0].When = &flag.Condition{Segment: "beta"} }, "rules: conditions or variants changed"},
		{"rule added", func(s *flag.Spec) { s.Targeting = append(s.Targeting, flag.Rule{Name: "beta", Variant: "on"}) }, "rules: staff → staff, beta"},
		{"variant", func(s *flag.Spec) { s.Variants = map[string]any{"on": true, "off": false, "maybe": true} }, "variants: +maybe"},
		{"nothing", func(*flag.Spec) {}, "no change to the spec"},
	} {
		after := base
		after.Targeting = append([]flag.Rule(nil), base.Targeting...)
		tc.edit(&after)
		if got := flagchange.Summarize(&base, &after); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := flagchange.Summarize(nil, &base); got != "created (enabled, default off, rules staff)" {
		t.Errorf("create: %q", got)
	}
}
