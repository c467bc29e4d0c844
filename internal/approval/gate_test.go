package approval

import (
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/release"
)

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func vote(who string, d Decision, roles ...string) Approval {
	return Approval{Name: who, CreatedAt: now.Add(-time.Hour), Spec: Spec{
		Promotion: "p", Digest: digest, PolicyRevision: 7, Approver: who, Roles: roles, Decision: d, Reason: "looks fine",
	}}
}

func input(emergency bool) *gate.Input {
	return &gate.Input{App: "web", To: "prod", Now: now, Emergency: emergency, RequestedBy: "deployer",
		PolicyRevision: 7, Release: release.Spec{Creator: "ci-bot", Authors: []string{"erin"}, Artifact: release.Artifact{Digest: digest}}}
}

func TestGate(t *testing.T) {
	t.Parallel()
	require := map[string]int{"tech-lead": 1, "sre": 1}
	stale := vote("bob", Approve, "sre")
	stale.Spec.Digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	oldPolicy := vote("bob", Approve, "sre")
	oldPolicy.Spec.PolicyRevision = 6
	expired := vote("bob", Approve, "sre")
	expired.CreatedAt = now.Add(-MaxAge - time.Minute)
	for _, tc := range []struct {
		name      string
		emergency bool
		votes     []Approval
		want      gate.Status
		reason    string
	}{
		{name: "none", want: gate.StatusPending, reason: "needs 1 sre approval, 1 tech-lead approval; have: none"},
		{name: "two people", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("bob", Approve, "sre")}, want: gate.StatusPass},
		{name: "one person with both roles counts once", votes: []Approval{vote("alice", Approve, "tech-lead", "sre")}, want: gate.StatusPending, reason: "needs 1"},
		{name: "matching, not greedy", votes: []Approval{vote("alice", Approve, "sre", "tech-lead"), vote("bob", Approve, "sre")}, want: gate.StatusPass},
		{name: "pending names the missing role", votes: []Approval{vote("alice", Approve, "tech-lead")}, want: gate.StatusPending, reason: "needs 1 sre approval; have: tech-lead alice"},
		{name: "creator may not approve", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("ci-bot", Approve, "sre")}, want: gate.StatusPending, reason: "ci-bot created the release"},
		{name: "requester may not approve", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("deployer", Approve, "sre")}, want: gate.StatusPending, reason: "deployer requested the promotion"},
		{name: "double vote counts once", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("alice", Approve, "tech-lead")}, want: gate.StatusPending},
		{name: "role not held for env", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("bob", Approve)}, want: gate.StatusPending, reason: "bob holds none of the required roles"},
		{name: "expired", votes: []Approval{vote("alice", Approve, "tech-lead"), expired}, want: gate.StatusPending, reason: "expired"},
		{name: "stale digest", votes: []Approval{vote("alice", Approve, "tech-lead"), stale}, want: gate.StatusPending, reason: "another artifact"},
		{name: "stale policy", votes: []Approval{vote("alice", Approve, "tech-lead"), oldPolicy}, want: gate.StatusPending, reason: "policy revision 6"},
		{name: "rejection blocks", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("bob", Approve, "sre"), vote("carol", Reject, "sre")}, want: gate.StatusFail, reason: "rejected by carol (sre): looks fine"},
		{name: "commit author may not approve", votes: []Approval{vote("alice", Approve, "tech-lead"), vote("erin", Approve, "sre")}, want: gate.StatusPending, reason: "erin authored the release's commit"},
		{name: "emergency needs an emergency approver", emergency: true, votes: []Approval{vote("bob", Approve, EmergencyRole)}, want: gate.StatusPass, reason: "approved by emergency-approver bob"},
		{name: "emergency is not approved by the usual roles", emergency: true, votes: []Approval{vote("alice", Approve, "tech-lead"), vote("bob", Approve, "sre")}, want: gate.StatusPending, reason: "needs 1 emergency-approver approval (emergency)"},
		{name: "emergency approver may not approve own request", emergency: true, votes: []Approval{vote("deployer", Approve, EmergencyRole)}, want: gate.StatusPending, reason: "deployer requested the promotion"},
		{name: "emergency still needs one", emergency: true, want: gate.StatusPending, reason: "needs 1 emergency-approver approval (emergency); have: none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gates, err := gate.Compile([]gate.Spec{{Type: GateType, Require: require}})
			if err != nil {
				t.Fatal(err)
			}
			in := input(tc.emergency)
			in.Extra = map[string]any{GateType: tc.votes}
			r := gate.Evaluate(gates, in)[0]
			if r.Status != tc.want {
				t.Fatalf("status %s, want %s: %v", r.Status, tc.want, r.Reasons)
			}
			if got := strings.Join(r.Reasons, "; "); !strings.Contains(got, tc.reason) {
				t.Fatalf("reasons %q lack %q", got, tc.reason)
			}
			if r.Status == gate.StatusPending && r.Fix != "airlock approve <promotion> --reason TEXT" {
				t.Fatalf("fix %q", r.Fix)
			}
			if r.Final != (r.Status == gate.StatusFail) {
				t.Fatalf("final %v for status %s: only a rejection ends a promotion", r.Final, r.Status)
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	t.Parallel()
	gates, err := gate.Compile([]gate.Spec{{Type: GateType, Require: map[string]int{"sre": 1}, MaxAge: "30m"}})
	if err != nil {
		t.Fatal(err)
	}
	in := input(false)
	fresh, old := vote("bob", Approve, "sre"), vote("bob", Approve, "sre")
	fresh.CreatedAt, old.CreatedAt = now.Add(-29*time.Minute), now.Add(-31*time.Minute)
	for _, tc := range []struct {
		v    Approval
		want gate.Status
	}{{fresh, gate.StatusPass}, {old, gate.StatusPending}} {
		in.Extra = map[string]any{GateType: []Approval{tc.v}}
		r := gate.Evaluate(gates, in)[0]
		if r.Status != tc.want {
			t.Errorf("vote given %s ago: %s, want %s (%v)", now.Sub(tc.v.CreatedAt), r.Status, tc.want, r.Reasons)
		}
		if tc.want == gate.StatusPending && !strings.Contains(strings.Join(r.Reasons, ";"), "expired (given 2026-11-27T11:29:00Z, valid 30m0s)") {
			t.Errorf("reasons %v do not say the vote expired", r.Reasons)
		}
	}
}

func TestSpecFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec  gate.Spec
		field string
	}{
		{gate.Spec{Type: GateType}, "require"},
		{gate.Spec{Type: GateType, Require: map[string]int{"sre": 0}}, "require.sre"},
		{gate.Spec{Type: GateType, Require: map[string]int{"sre": 1}, Suite: "unit"}, "suite"},
		{gate.Spec{Type: gate.TypeTests, Require: map[string]int{"sre": 1}}, "require"},
		{gate.Spec{Type: gate.TypeTests, MaxAge: "1h"}, "maxAge"},
		{gate.Spec{Type: GateType, Require: map[string]int{"sre": 1}, MaxAge: "soon"}, "maxAge"},
		{gate.Spec{Type: GateType, Require: map[string]int{"sre": 1}, MaxAge: "10s"}, "maxAge"},
		{gate.Spec{Type: GateType, Require: map[string]int{"sre": 1}, MaxAge: "721h"}, "maxAge"},
	} {
		_, err := gate.Compile([]gate.Spec{tc.spec})
		se, ok := err.(*gate.SpecError)
		if !ok || se.Field != tc.field {
			t.Errorf("Compile(%+v) = %v, want an error at %s", tc.spec, err, tc.field)
		}
	}
}
