package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/rollout"
)

func TestRollbackTestedGate(t *testing.T) {
	gates, err := gate.Compile([]gate.Spec{{Type: rollout.RollbackTestedGate}})
	if err != nil {
		t.Fatal(err)
	}
	rehearsal := func(passed bool, tier string, trusted bool) gate.Evidence {
		return gate.Evidence{Digest: "sha256:ab", Type: evidence.Rollback, Trusted: trusted, SubmittedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
			Report: evidence.Report{Type: evidence.Rollback, Facts: map[string]any{
				"rollback.passed": passed, "rollback.environment": "staging", "rollback.tier": tier, "rollback.previous": "1.4.0", "rollback.ms": 35.0}}}
	}
	for _, tc := range []struct {
		name string
		ev   []gate.Evidence
		want gate.Status
		text string
	}{
		{"none", nil, gate.StatusPending, "no rollback rehearsal of shop 1.5.0 yet"},
		{"passed in staging", []gate.Evidence{rehearsal(true, "staging", true)}, gate.StatusPass, "rollback rehearsed in staging on 2026-11-27 10:00: back to 1.4.0 in 35 ms"},
		{"failed", []gate.Evidence{rehearsal(false, "staging", true)}, gate.StatusFail, "the rollback rehearsal in staging on 2026-11-27 10:00 failed"},
		{"a failure, then a pass", []gate.Evidence{rehearsal(false, "staging", true), rehearsal(true, "staging", true)}, gate.StatusPass, "rehearsed"},
		{"in production does not count", []gate.Evidence{rehearsal(true, "production", true)}, gate.StatusPending, "no rollback rehearsal"},
		{"untrusted does not count", []gate.Evidence{rehearsal(true, "staging", false)}, gate.StatusPending, "no rollback rehearsal"},
	} {
		in := &gate.Input{App: "shop", Release: release.Spec{App: "shop", Version: "1.5.0"}, To: "prod", Evidence: tc.ev}
		r := gate.Evaluate(gates, in)[0]
		if r.Status != tc.want || !strings.Contains(strings.Join(r.Reasons, ";"), tc.text) {
			t.Errorf("%s: %s %v, want %s with %q", tc.name, r.Status, r.Reasons, tc.want, tc.text)
		}
	}
	if _, err := gate.Compile([]gate.Spec{{Type: rollout.RollbackTestedGate, MinPercent: 3}}); err == nil || !strings.Contains(err.Error(), "does not apply to a rollbackTested gate") {
		t.Fatalf("a field of another gate: %v", err)
	}
}
