package promotion_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

var approvalWorld = promotiontest.DevProd("- {type: approvals, require: {tech-lead: 1, sre: 1}}")

// newApprovalEnv has shop 1.4.0 (created by "ci") in dev and a pending
// promotion to prod requested by "deployer".
func newApprovalEnv(t *testing.T) (*promotion.Service, store.Store, string) {
	t.Helper()
	ctx := context.Background()
	w := promotiontest.New(t, approvalWorld)
	p, st := w.Promotions, w.Store
	for _, to := range []string{"dev", "prod"} {
		if _, err := p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	return p, st, promotion.Name("shop-1.4.0", "prod")
}

func phase(t *testing.T, st store.Store, name string) promotion.Status {
	t.Helper()
	obj, err := st.Get(context.Background(), promotion.Kind, name)
	if err != nil {
		t.Fatal(err)
	}
	var s promotion.Status
	if err := obj.DecodeStatus(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApprovalsPromote(t *testing.T) {
	ctx := context.Background()
	p, st, name := newApprovalEnv(t)
	if s := phase(t, st, name); s.Phase != promotion.Pending {
		t.Fatalf("phase %s before approvals: %s", s.Phase, s.Message)
	}
	vote := func(who string, d approval.Decision, roles ...string) error {
		_, err := p.Vote(ctx, store.Actor{Name: who}, promotion.Vote{Promotion: name, Decision: d, Reason: "checked", Roles: roles})
		return err
	}
	var pe *promotion.PolicyError
	if err := vote("ci", approval.Approve, "tech-lead"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "created release") {
		t.Fatalf("creator approving: %v", err)
	}
	if err := vote("deployer", approval.Approve, "sre"); !errors.As(err, &pe) {
		t.Fatalf("requester approving: %v", err)
	}
	if err := vote("dave", approval.Approve, "deployer"); !errors.As(err, &pe) {
		t.Fatalf("approving without a required role: %v", err)
	}
	var inv *promotion.InvalidError
	if _, err := p.Vote(ctx, store.Actor{Name: "alice"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: " ", Roles: []string{"sre"}}); !errors.As(err, &inv) {
		t.Fatalf("empty reason: %v", err)
	}
	// alice holds both roles: she counts once.
	if err := vote("alice", approval.Approve, "tech-lead", "sre"); err != nil {
		t.Fatal(err)
	}
	if s := phase(t, st, name); s.Phase != promotion.Pending {
		t.Fatalf("one person with both roles promoted it: %s", s.Message)
	}
	if err := vote("alice", approval.Approve, "tech-lead", "sre"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second vote: %v", err)
	}
	pending, err := p.PendingApprovals(ctx, "bob", func(string) []string { return []string{"sre"} }, true)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending for bob: %d %v", len(pending), err)
	}
	if mine, _ := p.PendingApprovals(ctx, "alice", func(string) []string { return []string{"sre"} }, true); len(mine) != 0 {
		t.Fatalf("alice already voted but is offered %d", len(mine))
	}
	if err := vote("bob", approval.Approve, "sre"); err != nil {
		t.Fatal(err)
	}
	if s := phase(t, st, name); s.Phase != promotion.Succeeded {
		t.Fatalf("tech-lead and sre by two people: %s %s", s.Phase, s.Message)
	}
	if err := vote("carol", approval.Reject, "sre"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("voting on a finished promotion: %v", err)
	}
}

func TestRejectionEndsThePromotion(t *testing.T) {
	ctx := context.Background()
	p, st, name := newApprovalEnv(t)
	if _, err := p.Vote(ctx, store.Actor{Name: "alice"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "ok", Roles: []string{"tech-lead"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Vote(ctx, store.Actor{Name: "carol"}, promotion.Vote{Promotion: name, Decision: approval.Reject, Reason: "no rollback plan", Roles: []string{"sre"}}); err != nil {
		t.Fatal(err)
	}
	s := phase(t, st, name)
	if s.Phase != promotion.Rejected || s.CompletedAt == nil || !strings.Contains(s.Message, "rejected by carol (sre): no rollback plan") {
		t.Fatalf("after a rejection: %s %q %+v", s.Phase, s.Message, s.Gates)
	}
	// Nothing cures it: no more votes, no new request.
	_, err := p.Vote(ctx, store.Actor{Name: "bob"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "ok", Roles: []string{"sre"}})
	var pe *promotion.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "already finished (Rejected)") {
		t.Fatalf("approving a rejected promotion: %v", err)
	}
	_, err = p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: "prod"})
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "a rejection is final") {
		t.Fatalf("asking again after a rejection: %v", err)
	}
	if s2 := phase(t, st, name); s2.Phase != promotion.Rejected || s2.Evaluations != s.Evaluations {
		t.Fatalf("a refused request changed the promotion: %+v", s2)
	}
}

func TestCommitAuthorMayNotApprove(t *testing.T) {
	ctx := context.Background()
	w := promotiontest.New(t, approvalWorld)
	if _, err := catalog.New(w.Store, server.NewScheme()).CreateRelease(ctx, store.Actor{Name: "ci"}, catalog.ReleaseRequest{
		App: "shop", Version: "1.5.0", Artifact: release.Artifact{Digest: promotiontest.Digest}, Commit: "9f2c1e7", Authors: []string{"dave"},
	}); err != nil {
		t.Fatal(err)
	}
	name := "shop-1.5.0.to.prod"
	for _, to := range []string{"dev", "prod"} {
		if _, err := w.Promotions.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.5.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := w.Promotions.Vote(ctx, store.Actor{Name: "dave"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "my code is fine", Roles: []string{"sre"}})
	var pe *promotion.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "dave authored the commit of release shop-1.5.0") {
		t.Fatalf("the commit author approving: %v", err)
	}
	if mine, _ := w.Promotions.PendingApprovals(ctx, "dave", func(string) []string { return []string{"sre"} }, true); len(mine) != 0 {
		t.Fatalf("the commit author is offered %d promotions to approve", len(mine))
	}
}

func TestEmergencyNeedsOneApproval(t *testing.T) {
	ctx := context.Background()
	p, st, name := newApprovalEnv(t)
	inc, err := incident.New(st).Open(ctx, store.Actor{Name: "sre"}, incident.OpenRequest{Severity: incident.Sev1, Summary: "payments down"})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := p.Request(ctx, store.Actor{Name: "oncall"}, promotion.Request{App: "shop", Version: "1.4.0", To: "prod",
		Emergency: &promotion.Emergency{Incident: inc.Metadata.Name, Reason: "payments down"}})
	if err != nil {
		t.Fatal(err)
	}
	var s promotion.Status
	if err := obj.DecodeStatus(&s); err != nil {
		t.Fatal(err)
	}
	if s.Phase != promotion.Pending || s.Gates[0].Status != "pending" {
		t.Fatalf("an emergency waived the approvals: %s %+v", s.Phase, s.Gates)
	}
	if _, err := p.Vote(ctx, store.Actor{Name: "oncall"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "me", Roles: []string{approval.EmergencyRole}}); err == nil {
		t.Fatal("the emergency requester approved their own promotion")
	}
	// The usual approvers do not make an emergency: an emergency approver does.
	_, err = p.Vote(ctx, store.Actor{Name: "bob"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "go", Roles: []string{"sre", "tech-lead"}})
	if err == nil || !strings.Contains(err.Error(), "holds none of the roles this promotion needs (emergency-approver)") {
		t.Fatalf("an sre approving an emergency: %v", err)
	}
	if _, err := p.Vote(ctx, store.Actor{Name: "erica"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "go", Roles: []string{approval.EmergencyRole}}); err != nil {
		t.Fatal(err)
	}
	if s := phase(t, st, name); s.Phase != promotion.Succeeded || s.Review == "" {
		t.Fatalf("one approval in an emergency: %s %s review %q", s.Phase, s.Message, s.Review)
	}
}

func TestRefusedVotesAreAudited(t *testing.T) {
	ctx := context.Background()
	p, st, name := newApprovalEnv(t)
	before, _, _ := st.Audit().Head(ctx)
	_, err := p.Vote(ctx, store.Actor{Name: "ci"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "self-review", Roles: []string{"tech-lead"}})
	var pe *promotion.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("creator approving: %v", err)
	}
	var entries []audit.Entry
	st.Audit().Entries(ctx, store.AuditFilter{After: before}, func(e audit.Entry) error { entries = append(entries, e); return nil })
	if len(entries) != 1 || entries[0].Action != "refused-approve" || entries[0].Actor != "ci" || entries[0].Name != name ||
		!strings.Contains(entries[0].Reason, "created release") {
		t.Fatalf("audit after a refused vote: %+v", entries)
	}
	if objs, _ := st.List(ctx, approval.Kind, nil); len(objs) != 0 {
		t.Fatalf("a refused vote left %d approval records", len(objs))
	}
}
