package environment

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// env builds a spec in one line: tier, level, network, credentials.
func env(tier Tier, level Level, network, creds string) Spec {
	data := DataSynthetic
	if tier == TierProduction {
		data = DataProduction
	}
	return Spec{Tier: tier, Isolation: Isolation{Level: level, Network: network, Credentials: creds}, Data: data}
}

func withWaiver(s Spec, reason string, expires *time.Time) Spec {
	s.Isolation.Waiver = &Waiver{Reason: reason, Expires: expires}
	return s
}

func withRuntime(s Spec, r string) Spec { s.Runtime = r; return s }

func at(t time.Time) *time.Time { return &t }

const reason = "one machine while we pilot airlock"

// problem is the part of a Problem a case asserts on.
type problem struct{ env, rule, other, path string }

func TestCheckSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		envs         map[string]Spec
		wantProblems []problem
		wantMsg      []string // each must appear in the error text
		wantNotMsg   []string // none may appear in the error text
		wantWaived   []string // environments with one waived production-isolation violation
	}{
		{
			name: "empty set",
			envs: map[string]Spec{},
		},
		{
			name: "single local production at cluster",
			envs: map[string]Spec{"prod": env(TierProduction, LevelCluster, "prod-net", "prod-vault")},
		},
		{
			name: "an empty runtime counts as local",
			envs: map[string]Spec{
				"dev":  withRuntime(env(TierDevelopment, LevelLabels, "dev-net", "dev-vault"), "local"),
				"prod": env(TierProduction, LevelEnvironment, "prod-net", "prod-vault"),
			},
			wantProblems: []problem{{"prod", RuleSharedHost, "", "spec.isolation.level"}},
			wantMsg:      []string{`environments "dev", "prod" all run as processes of one OS user`, `declare "level: labels"`, "add isolation.waiver"},
		},
		{
			name: "all local at labels, production waived",
			envs: map[string]Spec{
				"dev":     env(TierDevelopment, LevelLabels, "dev-net", "dev-vault"),
				"staging": env(TierStaging, LevelLabels, "staging-net", "staging-vault"),
				"prod":    withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, nil),
			},
			wantWaived: []string{"prod"},
		},
		{
			name: "non-production envs may share scopes with each other",
			envs: map[string]Spec{
				"dev":  env(TierDevelopment, LevelLabels, "nonprod-net", "nonprod-vault"),
				"test": env(TierTesting, LevelLabels, "nonprod-net", "nonprod-vault"),
			},
		},
		{
			name: "production envs may share scopes with each other",
			envs: map[string]Spec{
				"prod-eu": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, nil),
				"prod-us": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, nil),
			},
			wantWaived: []string{"prod-eu", "prod-us"},
		},
		{
			name: "production shares network with staging",
			envs: map[string]Spec{
				"staging": env(TierStaging, LevelLabels, "shared-net", "staging-vault"),
				"prod":    withWaiver(env(TierProduction, LevelLabels, "shared-net", "prod-vault"), reason, nil),
			},
			wantProblems: []problem{{"prod", RuleSharedNetwork, "staging", "spec.isolation.network"}},
			wantMsg:      []string{`production environment "prod" shares network scope "shared-net" with staging environment "staging"`, "own network scope"},
		},
		{
			name: "production shares credentials with preproduction",
			envs: map[string]Spec{
				"preprod": env(TierPreproduction, LevelLabels, "preprod-net", "vault"),
				"prod":    withWaiver(env(TierProduction, LevelLabels, "prod-net", "vault"), reason, nil),
			},
			wantProblems: []problem{{"prod", RuleSharedCredentials, "preprod", "spec.isolation.credentials"}},
			wantMsg:      []string{`shares credential scope "vault" with preproduction environment "preprod"`},
		},
		{
			name: "production shares both with two environments",
			envs: map[string]Spec{
				"dev":  env(TierDevelopment, LevelLabels, "net", "vault"),
				"test": env(TierTesting, LevelLabels, "net", "test-vault"),
				"prod": withWaiver(env(TierProduction, LevelLabels, "net", "vault"), reason, nil),
			},
			wantProblems: []problem{
				{"prod", RuleSharedNetwork, "dev", "spec.isolation.network"},
				{"prod", RuleSharedCredentials, "dev", "spec.isolation.credentials"},
				{"prod", RuleSharedNetwork, "test", "spec.isolation.network"},
			},
		},
		{
			name: "sharing is checked whatever the runtime isolation",
			envs: map[string]Spec{
				"staging": env(TierStaging, LevelLabels, "staging-net", "vault"),
				"prod":    env(TierProduction, LevelCluster, "prod-net", "vault"),
			},
			wantProblems: []problem{
				{"prod", RuleSharedCredentials, "staging", "spec.isolation.credentials"},
				{"prod", RuleSharedHost, "", "spec.isolation.level"},
			},
		},
		{
			name: "two local non-production envs claiming namespace",
			envs: map[string]Spec{
				"dev":  env(TierDevelopment, LevelNamespace, "dev-net", "dev-vault"),
				"test": env(TierTesting, LevelLabels, "test-net", "test-vault"),
			},
			wantProblems: []problem{{"dev", RuleSharedHost, "", "spec.isolation.level"}},
			wantMsg:      []string{"level namespace claims more isolation than runtime local gives", "read the others' files and ports", `declare "level: labels"`},
		},
		{
			name: "shared host message for non-production does not ask for a waiver",
			envs: map[string]Spec{
				"dev":  env(TierDevelopment, LevelNode, "dev-net", "dev-vault"),
				"test": env(TierTesting, LevelLabels, "test-net", "test-vault"),
			},
			wantProblems: []problem{{"dev", RuleSharedHost, "", "spec.isolation.level"}},
			wantNotMsg:   []string{"waiver"},
		},
		{
			name: "every local env over-claiming is reported",
			envs: map[string]Spec{
				"dev":  env(TierDevelopment, LevelNode, "dev-net", "dev-vault"),
				"prod": env(TierProduction, LevelCluster, "prod-net", "prod-vault"),
			},
			wantProblems: []problem{
				{"dev", RuleSharedHost, "", "spec.isolation.level"},
				{"prod", RuleSharedHost, "", "spec.isolation.level"},
			},
		},
		{
			name: "invalid member is reported by its field",
			envs: map[string]Spec{
				"dev":  {Tier: TierDevelopment, Isolation: Isolation{Level: LevelLabels, Network: "dev-net", Credentials: "dev-vault"}, Data: DataProduction},
				"prod": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, nil),
			},
			wantProblems: []problem{{"dev", RuleProductionData, "", "spec.data"}},
			wantMsg:      []string{"must not hold production data"},
		},
		{
			name: "unwaived production below cluster",
			envs: map[string]Spec{
				"prod": env(TierProduction, LevelNode, "prod-net", "prod-vault"),
			},
			wantProblems: []problem{{"prod", RuleProductionIsolation, "", "spec.isolation.level"}},
		},
		{
			name: "invalid member is not also reported by set rules",
			envs: map[string]Spec{
				"dev":  {Tier: "dev", Isolation: Isolation{Level: LevelNode, Network: "net", Credentials: "vault"}, Data: DataSynthetic},
				"prod": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, nil),
			},
			wantProblems: []problem{{"dev", RuleInvalid, "", "spec.tier"}},
		},
		{
			name: "expired waiver",
			envs: map[string]Spec{
				"prod": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, at(now.Add(-time.Hour))),
			},
			wantProblems: []problem{{"prod", RuleWaiverExpired, "", "spec.isolation.waiver.expires"}},
			wantMsg:      []string{"expired at 2026-06-01T11:00:00Z", "renew the waiver"},
		},
		{
			name: "waiver expiring exactly now has expired",
			envs: map[string]Spec{
				"prod": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, at(now)),
			},
			wantProblems: []problem{{"prod", RuleWaiverExpired, "", "spec.isolation.waiver.expires"}},
		},
		{
			name: "waiver expiring later is recorded",
			envs: map[string]Spec{
				"prod": withWaiver(env(TierProduction, LevelLabels, "prod-net", "prod-vault"), reason, at(now.Add(time.Hour))),
			},
			wantWaived: []string{"prod"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CheckSet(tt.envs, now)
			if len(tt.wantProblems) > 0 {
				var se *SetError
				if !errors.As(err, &se) {
					t.Fatalf("CheckSet: got %v, want a *SetError", err)
				}
				var ps []problem
				for _, p := range se.Problems {
					ps = append(ps, problem{p.Environment, p.Rule, p.Other, p.Path})
				}
				if !equalProblems(ps, tt.wantProblems) {
					t.Errorf("problems:\n got %v\nwant %v\n%v", ps, tt.wantProblems, err)
				}
				for _, w := range tt.wantMsg {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				for _, w := range tt.wantNotMsg {
					if strings.Contains(err.Error(), w) {
						t.Errorf("error %q contains %q", err, w)
					}
				}
				if got != nil {
					t.Errorf("violations = %v, want nil with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckSet: unexpected error %v", err)
			}
			if len(got) != len(tt.envs) {
				t.Errorf("got violations for %d environments, want a key for each of %d", len(got), len(tt.envs))
			}
			var waived []string
			for name, vs := range got {
				for _, v := range vs {
					if v.Rule != RuleProductionIsolation || !v.Waived {
						t.Errorf("%s: unexpected violation %+v", name, v)
						continue
					}
					if !strings.Contains(v.Message, "below cluster, waived") || !strings.HasSuffix(v.Message, ": "+reason) {
						t.Errorf("%s: message %q does not name the level and the waiver's reason", name, v.Message)
					}
					waived = append(waived, name)
				}
			}
			sort.Strings(waived)
			if strings.Join(waived, ",") != strings.Join(tt.wantWaived, ",") {
				t.Errorf("waived violations on %v, want %v", waived, tt.wantWaived)
			}
		})
	}
}

func equalProblems(a, b []problem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCheckSetViolationMessage(t *testing.T) {
	t.Parallel()
	got, err := CheckSet(map[string]Spec{
		"prod": withWaiver(env(TierProduction, LevelNamespace, "prod-net", "prod-vault"), reason, at(now.Add(24*time.Hour))),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := "isolation level namespace is below cluster, waived until 2026-06-02T12:00:00Z: " + reason
	if len(got["prod"]) != 1 || got["prod"][0].Message != want {
		t.Errorf("violations = %+v, want one with message %q", got["prod"], want)
	}
}

func TestCheckSetSharedCluster(t *testing.T) {
	kube := func(level Level, ns string) Spec {
		return Spec{Tier: TierStaging, Data: DataMasked, Runtime: RuntimeKubernetes,
			Isolation:  Isolation{Level: level, Network: "net-" + ns, Credentials: "cred-" + ns},
			Kubernetes: &Kubernetes{Kubeconfig: "/etc/airlock/kube.yaml", Namespace: ns, Traffic: "service"}}
	}
	now := time.Now()
	if _, err := CheckSet(map[string]Spec{"a": kube(LevelNamespace, "a"), "b": kube(LevelNamespace, "b")}, now); err != nil {
		t.Fatalf("two namespaces of one cluster at level namespace: %v", err)
	}
	_, err := CheckSet(map[string]Spec{"a": kube(LevelCluster, "a"), "b": kube(LevelNamespace, "b")}, now)
	if err == nil || !strings.Contains(err.Error(), "claims more isolation than one cluster gives") {
		t.Fatalf("cluster level on a shared cluster: %v", err)
	}
	_, err = CheckSet(map[string]Spec{"a": kube(LevelNamespace, "same"), "b": kube(LevelLabels, "same")}, now)
	if err == nil || !strings.Contains(err.Error(), "share namespace same") {
		t.Fatalf("namespace level in a shared namespace: %v", err)
	}
	other := kube(LevelCluster, "b")
	other.Kubernetes.Context = "other-cluster"
	if _, err := CheckSet(map[string]Spec{"a": kube(LevelNamespace, "a"), "b": other}, now); err != nil {
		t.Fatalf("another context is another cluster: %v", err)
	}
}
