package approval

import (
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/gate"
)

func changeset(paths ...any) gate.Evidence {
	return gate.Evidence{Type: evidence.Changeset, Name: "changeset", Report: evidence.Report{Type: evidence.Changeset, Facts: map[string]any{"changeset.paths": paths}}}
}

func TestSecurityRelevantChangesNeedSecurity(t *testing.T) {
	t.Parallel()
	g, err := gate.Compile([]gate.Spec{{Type: GateType, Require: map[string]int{"tech-lead": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	custom := []string{"billing/**"}
	gc, err := gate.Compile([]gate.Spec{{Type: GateType, Require: map[string]int{"tech-lead": 1}, SecurityPaths: &custom}})
	if err != nil {
		t.Fatal(err)
	}
	off := []string{}
	goff, _ := gate.Compile([]gate.Spec{{Type: GateType, Require: map[string]int{"tech-lead": 1}, SecurityPaths: &off}})
	lead := vote("alice", Approve, "tech-lead")
	sec := vote("sam", Approve, "security")
	for _, tc := range []struct {
		name   string
		g      []gate.Gate
		ev     []gate.Evidence
		votes  []Approval
		want   gate.Status
		reason string
	}{
		{"docs change needs only the lead", g, []gate.Evidence{changeset("README.md", "docs/guide.md")}, []Approval{lead}, gate.StatusPass, ""},
		{"auth change adds security", g, []gate.Evidence{changeset("README.md", "internal/auth/login.go")}, []Approval{lead}, gate.StatusPending, "internal/auth/login.go (**/auth/**)"},
		{"auth change with security approval", g, []gate.Evidence{changeset("internal/auth/login.go")}, []Approval{lead, sec}, gate.StatusPass, "security-relevant change"},
		{"terraform is infrastructure", g, []gate.Evidence{changeset([]any{"deploy/main.tf"}...)}, []Approval{lead}, gate.StatusPending, "deploy/main.tf (**/*.tf)"},
		{"case does not hide it", g, []gate.Evidence{changeset("pkg/Crypto/AES.go")}, []Approval{lead}, gate.StatusPending, "pkg/Crypto/AES.go"},
		{"no changeset, no detection", g, nil, []Approval{lead}, gate.StatusPass, ""},
		{"declared patterns replace the defaults", gc, []gate.Evidence{changeset("internal/auth/login.go", "billing/rates.go")}, []Approval{lead}, gate.StatusPending, "billing/rates.go (billing/**)"},
		{"an empty list turns detection off", goff, []gate.Evidence{changeset("internal/auth/login.go")}, []Approval{lead}, gate.StatusPass, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := input(false)
			in.Evidence = tc.ev
			in.Extra = map[string]any{GateType: tc.votes}
			r := gate.Evaluate(tc.g, in)[0]
			all := strings.Join(r.Reasons, " | ")
			if r.Status != tc.want || (tc.reason != "" && !strings.Contains(all, tc.reason)) || (tc.reason == "" && strings.Contains(all, "security-relevant")) {
				t.Fatalf("status %s, reasons %q; want %s mentioning %q", r.Status, all, tc.want, tc.reason)
			}
		})
	}
}

func TestSecurityPathsAreValidated(t *testing.T) {
	t.Parallel()
	bad := []string{" "}
	if _, err := gate.Compile([]gate.Spec{{Type: GateType, Require: map[string]int{"sre": 1}, SecurityPaths: &bad}}); err == nil || !strings.Contains(err.Error(), "securityPaths") {
		t.Fatalf("blank pattern: %v", err)
	}
	paths := []string{"x/**"}
	if _, err := gate.Compile([]gate.Spec{{Type: "coverage", MinPercent: 80, SecurityPaths: &paths}}); err == nil || !strings.Contains(err.Error(), "securityPaths") {
		t.Fatalf("securityPaths on a coverage gate: %v", err)
	}
}

func TestBusinessOwnerWhenUserFacing(t *testing.T) {
	t.Parallel()
	g, err := gate.Compile([]gate.Spec{{Type: GateType, Name: "business-approval", Require: map[string]int{"business-owner": 1}, When: "app.userFacing"}})
	if err != nil {
		t.Fatal(err)
	}
	in := input(false)
	in.Extra = map[string]any{GateType: []Approval{}}
	if r := gate.Evaluate(g, in)[0]; r.Status != gate.StatusSkipped {
		t.Fatalf("internal app: %s %v", r.Status, r.Reasons)
	}
	in.AppSpec.UserFacing = true
	if r := gate.Evaluate(g, in)[0]; r.Status != gate.StatusPending || !strings.Contains(strings.Join(r.Reasons, " "), "business-owner") {
		t.Fatalf("user-facing app without the business owner: %s %v", r.Status, r.Reasons)
	}
	in.Extra = map[string]any{GateType: []Approval{vote("bo", Approve, "business-owner")}}
	if r := gate.Evaluate(g, in)[0]; r.Status != gate.StatusPass {
		t.Fatalf("user-facing app with the business owner: %s %v", r.Status, r.Reasons)
	}
	if _, err := gate.Compile([]gate.Spec{{Type: GateType, Require: map[string]int{"sre": 1}, When: "app.nope("}}); err == nil || !strings.Contains(err.Error(), "when") {
		t.Fatalf("bad when: %v", err)
	}
}
