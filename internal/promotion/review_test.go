package promotion_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

// emergencyWorld has shop 1.4.0 promoted to prod as an emergency
// (requested by "oncall", approved by "erica") and returns the review's name.
func emergencyWorld(t *testing.T, yaml string) (*promotiontest.World, string) {
	t.Helper()
	ctx := context.Background()
	w := promotiontest.New(t, yaml)
	if _, err := w.Promotions.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: "dev"}); err != nil {
		t.Fatal(err)
	}
	inc, err := incident.New(w.Store).Open(ctx, store.Actor{Name: "oncall"}, incident.OpenRequest{Severity: incident.Sev1, Summary: "payments down"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Promotions.Request(ctx, store.Actor{Name: "oncall"}, promotion.Request{App: "shop", Version: "1.4.0", To: "prod",
		Emergency: &promotion.Emergency{Incident: inc.Metadata.Name, Reason: "payments down"}}); err != nil {
		t.Fatal(err)
	}
	st := promotiontest.ApproveEmergency(t, w.Promotions, promotion.Name("shop-1.4.0", "prod"))
	if st.Phase != promotion.Succeeded || st.Review == "" {
		t.Fatalf("emergency: %+v", st)
	}
	return w, st.Review
}

func review(t *testing.T, st store.Store, name string) (promotion.ReviewSpec, promotion.ReviewStatus) {
	t.Helper()
	obj, err := st.Get(context.Background(), promotion.ReviewKind, name)
	if err != nil {
		t.Fatal(err)
	}
	var spec promotion.ReviewSpec
	var s promotion.ReviewStatus
	if err := obj.DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if err := obj.DecodeStatus(&s); err != nil {
		t.Fatal(err)
	}
	return spec, s
}

func TestReviewIsCompletedByTheWholeChain(t *testing.T) {
	ctx := context.Background()
	w, name := emergencyWorld(t, approvalWorld)
	spec, st := review(t, w.Store, name)
	if spec.Chain["tech-lead"] != 1 || spec.Chain["sre"] != 1 || len(spec.Chain) != 2 || strings.Join(spec.ApprovedBy, ",") != "erica" ||
		st.Phase != promotion.ReviewOpen || st.Missing != "1 sre, 1 tech-lead" {
		t.Fatalf("review as opened: %+v %+v", spec, st)
	}
	before, _, _ := w.Store.Audit().Head(ctx)
	complete := func(who string, outcome promotion.Outcome, reason string, roles ...string) error {
		_, err := w.Promotions.Complete(ctx, store.Actor{Name: who}, promotion.Completion{Review: name, Outcome: outcome, Reason: reason, Roles: roles})
		return err
	}
	var pe *promotion.PolicyError
	var ie *promotion.InvalidError
	for _, tc := range []struct {
		who     string
		outcome promotion.Outcome
		reason  string
		roles   []string
		want    string
	}{
		{"oncall", promotion.OutcomeAccepted, "fine", []string{"sre"}, "oncall requested the emergency promotion"},
		{"erica", promotion.OutcomeAccepted, "fine", []string{"tech-lead", approval.EmergencyRole}, "erica approved the emergency promotion"},
		{"dave", promotion.OutcomeAccepted, "fine", []string{"security"}, "dave holds none of the roles of the review's chain (1 sre, 1 tech-lead)"},
		{"alice", "fine", "fine", []string{"tech-lead"}, `outcome "fine" is not one of accepted, follow-up, reverted`},
		{"alice", promotion.OutcomeAccepted, "  ", []string{"tech-lead"}, "a reason is required"},
	} {
		err := complete(tc.who, tc.outcome, tc.reason, tc.roles...)
		if !(errors.As(err, &pe) || errors.As(err, &ie)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s completing: %v, want %q", tc.who, err, tc.want)
		}
	}
	var refused []audit.Entry
	w.Store.Audit().Entries(ctx, store.AuditFilter{After: before}, func(e audit.Entry) error { refused = append(refused, e); return nil })
	if len(refused) != 5 || refused[0].Action != "refused-review" || refused[0].Actor != "oncall" {
		t.Fatalf("refused attempts audited: %+v", refused)
	}
	if _, st2 := review(t, w.Store, name); len(st2.Signoffs) != 0 {
		t.Fatalf("a refused sign-off was recorded: %+v", st2)
	}

	if err := complete("alice", promotion.OutcomeAccepted, "hotfix was minimal", "tech-lead", "sre"); err != nil {
		t.Fatal(err)
	}
	if _, st = review(t, w.Store, name); st.Phase != promotion.ReviewOpen || st.Missing != "1 sre" && st.Missing != "1 tech-lead" {
		t.Fatalf("after one of two: %+v", st)
	}
	if err := complete("alice", promotion.OutcomeAccepted, "again", "tech-lead"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second sign-off by the same person: %v", err)
	}
	if err := complete("bob", promotion.OutcomeFollowUp, "add the missing test; ticket SHOP-88", "sre"); err != nil {
		t.Fatal(err)
	}
	_, st = review(t, w.Store, name)
	if st.Phase != promotion.ReviewCompleted || st.Outcome != promotion.OutcomeFollowUp || st.CompletedAt == nil || st.Missing != "" || len(st.Signoffs) != 2 {
		t.Fatalf("completed review: %+v", st)
	}
	if err := complete("carol", promotion.OutcomeAccepted, "late", "sre"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "already complete (outcome follow-up)") {
		t.Fatalf("signing a completed review: %v", err)
	}
}

// TestReviewChainFollowsThePolicy: a transition without approvals is
// reviewed by a tech lead; a security-relevant change adds security.
func TestReviewChainFollowsThePolicy(t *testing.T) {
	noApprovals := strings.Replace(approvalWorld, "    gates:\n    - {type: approvals, require: {tech-lead: 1, sre: 1}}\n", "", 1)
	w, name := emergencyWorld(t, noApprovals)
	spec, _ := review(t, w.Store, name)
	if len(spec.Chain) != 1 || spec.Chain["tech-lead"] != 1 {
		t.Fatalf("chain without approvals gates: %v", spec.Chain)
	}
	obj, err := w.Store.Get(context.Background(), promotion.Kind, promotion.Name("shop-1.4.0", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	var st promotion.Status
	obj.DecodeStatus(&st)
	if gateStatus(st, promotion.EmergencyGate) != string(gate.StatusPass) {
		t.Fatalf("the emergency gate of a transition without approvals: %+v", st.Gates)
	}
}

func TestOverdueReviewBlocksProduction(t *testing.T) {
	ctx := context.Background()
	w, name := emergencyWorld(t, approvalWorld)
	if _, err := catalog.New(w.Store, server.NewScheme()).CreateRelease(ctx, store.Actor{Name: "ci"}, catalog.ReleaseRequest{
		App: "shop", Version: "1.5.0", Artifact: release.Artifact{Digest: promotiontest.Digest}, Commit: "9f2c1e7",
	}); err != nil {
		t.Fatal(err)
	}
	next := promotion.Name("shop-1.5.0", "prod")
	for _, to := range []string{"dev", "prod"} {
		if _, err := w.Promotions.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.5.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	if st := phase(t, w.Store, next); st.Phase != promotion.Pending || gateStatus(st, promotion.ReviewsGateName) != string(gate.StatusPass) {
		t.Fatalf("before the deadline: %+v", st)
	}

	w.Clock.Add(24*time.Hour + time.Minute)
	if n, err := w.Promotions.FlagOverdue(ctx, store.Actor{Name: "system:reviews"}); err != nil || n != 1 {
		t.Fatalf("flagged %d: %v", n, err)
	}
	st := phase(t, w.Store, next)
	if st.Phase != promotion.Blocked || gateStatus(st, promotion.ReviewsGateName) != string(gate.StatusFail) {
		t.Fatalf("with an overdue review: %+v", st)
	}
	reasons := strings.Join(gateResult(st, promotion.ReviewsGateName).Reasons, ";")
	if !strings.Contains(reasons, "review "+name+" of emergency promotion shop-1.4.0.to.prod") || !strings.Contains(reasons, "missing: 1 sre, 1 tech-lead") {
		t.Fatalf("reasons: %s", reasons)
	}

	// Completing the review lifts the block at once.
	for _, c := range []struct{ who, role string }{{"alice", "tech-lead"}, {"bob", "sre"}} {
		if _, err := w.Promotions.Complete(ctx, store.Actor{Name: c.who}, promotion.Completion{Review: name, Outcome: promotion.OutcomeAccepted, Reason: "ok", Roles: []string{c.role}}); err != nil {
			t.Fatal(err)
		}
	}
	if st := phase(t, w.Store, next); st.Phase != promotion.Pending || gateStatus(st, promotion.ReviewsGateName) != string(gate.StatusPass) {
		t.Fatalf("after the review: %+v", st)
	}
}

func TestOverdueReviewBlockIsAPolicyOption(t *testing.T) {
	ctx := context.Background()
	off := strings.Replace(approvalWorld, "  - environment: prod\n", "  - environment: prod\n    blockOnOverdueReview: false\n", 1)
	w, _ := emergencyWorld(t, off)
	if _, err := catalog.New(w.Store, server.NewScheme()).CreateRelease(ctx, store.Actor{Name: "ci"}, catalog.ReleaseRequest{
		App: "shop", Version: "1.5.0", Artifact: release.Artifact{Digest: promotiontest.Digest}, Commit: "9f2c1e7",
	}); err != nil {
		t.Fatal(err)
	}
	w.Clock.Add(25 * time.Hour)
	if n, _ := w.Promotions.FlagOverdue(ctx, store.Actor{Name: "system:reviews"}); n != 1 {
		t.Fatalf("flagged %d", n)
	}
	for _, to := range []string{"dev", "prod"} {
		if _, err := w.Promotions.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.5.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	if st := phase(t, w.Store, promotion.Name("shop-1.5.0", "prod")); st.Phase != promotion.Pending || gateResult(st, promotion.ReviewsGateName) != nil {
		t.Fatalf("with blockOnOverdueReview: false: %+v", st)
	}
}

func gateResult(st promotion.Status, name string) *gate.Result {
	for i := range st.Gates {
		if st.Gates[i].Gate == name {
			return &st.Gates[i]
		}
	}
	return nil
}
