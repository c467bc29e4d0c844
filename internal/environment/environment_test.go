package environment

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

func staging() Spec {
	return Spec{
		Tier:      TierStaging,
		Isolation: Isolation{Level: LevelNamespace, Network: "staging-net", Credentials: "staging-vault"},
		Data:      DataMasked,
	}
}

func prod() Spec {
	return Spec{
		Tier:      TierProduction,
		Isolation: Isolation{Level: LevelCluster, Network: "prod-net", Credentials: "prod-vault"},
		Data:      DataProduction,
	}
}

func waiver(reason string) *Waiver { return &Waiver{Reason: reason} }

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     Spec
		edit     func(*Spec)
		wantPath string // "" means valid
		wantMsg  []string
	}{
		{name: "staging ok", spec: staging()},
		{name: "production at cluster ok", spec: prod()},
		{name: "production at environment ok", spec: prod(), edit: func(s *Spec) { s.Isolation.Level = LevelEnvironment }},
		{name: "runtime local ok", spec: staging(), edit: func(s *Spec) { s.Runtime = "local" }},
		{name: "every tier but production with masked data", spec: staging(), edit: func(s *Spec) { s.Tier = TierUAT; s.Data = DataSubset }},
		{name: "production with synthetic data ok", spec: prod(), edit: func(s *Spec) { s.Data = DataSynthetic }},
		{name: "waived production below cluster ok", spec: prod(), edit: func(s *Spec) {
			s.Isolation.Level = LevelLabels
			s.Isolation.Waiver = waiver("single machine for the pilot")
		}},

		{name: "flag change approvals ok", spec: prod(), edit: func(s *Spec) {
			s.FlagChanges = &FlagChanges{Approvals: map[string]int{"sre": 1, "tech-lead": 2}, MaxAge: "24h", IgnoreWindows: true}
		}},
		{name: "flag change approval count zero", spec: prod(), edit: func(s *Spec) { s.FlagChanges = &FlagChanges{Approvals: map[string]int{"sre": 0}} },
			wantPath: "spec.flagChanges.approvals.sre", wantMsg: []string{"must be from 1 to 10, got 0"}},
		{name: "flag change approvals too many", spec: prod(), edit: func(s *Spec) {
			s.FlagChanges = &FlagChanges{Approvals: map[string]int{"sre": 10, "tech-lead": 10, "security": 1}}
		}, wantPath: "spec.flagChanges.approvals", wantMsg: []string{"at most 20 approvals", "got 21"}},
		{name: "flag change role malformed", spec: prod(), edit: func(s *Spec) { s.FlagChanges = &FlagChanges{Approvals: map[string]int{"Tech Lead": 1}} },
			wantPath: "spec.flagChanges.approvals.Tech Lead", wantMsg: []string{"role"}},
		{name: "flag change maxAge too long", spec: staging(), edit: func(s *Spec) { s.FlagChanges = &FlagChanges{MaxAge: "1000h"} },
			wantPath: "spec.flagChanges.maxAge", wantMsg: []string{`maxAge "1000h"`, "1m to 720h"}},
		{name: "tier missing", spec: staging(), edit: func(s *Spec) { s.Tier = "" },
			wantPath: "spec.tier", wantMsg: []string{"tier is required", "development, testing, staging, uat, preproduction, production"}},
		{name: "tier unknown with suggestion", spec: staging(), edit: func(s *Spec) { s.Tier = "prod" },
			wantPath: "spec.tier", wantMsg: []string{`tier "prod" is not allowed`, `did you mean "production"`, "one of: development"}},
		{name: "tier wrong case", spec: staging(), edit: func(s *Spec) { s.Tier = "Staging" },
			wantPath: "spec.tier", wantMsg: []string{`did you mean "staging"`}},
		{name: "level missing", spec: staging(), edit: func(s *Spec) { s.Isolation.Level = "" },
			wantPath: "spec.isolation.level", wantMsg: []string{"isolation.level is required", "labels, namespace, node, cluster, environment", "weakest to strongest"}},
		{name: "level unknown", spec: staging(), edit: func(s *Spec) { s.Isolation.Level = "vm" },
			wantPath: "spec.isolation.level", wantMsg: []string{`"vm" is not allowed`}},
		{name: "network missing", spec: staging(), edit: func(s *Spec) { s.Isolation.Network = "" },
			wantPath: "spec.isolation.network", wantMsg: []string{"isolation.network is required"}},
		{name: "network not a name", spec: staging(), edit: func(s *Spec) { s.Isolation.Network = "Prod VPC" },
			wantPath: "spec.isolation.network", wantMsg: []string{"network scope", "lower-case"}},
		{name: "credentials missing", spec: staging(), edit: func(s *Spec) { s.Isolation.Credentials = "" },
			wantPath: "spec.isolation.credentials", wantMsg: []string{"isolation.credentials is required"}},
		{name: "data missing", spec: staging(), edit: func(s *Spec) { s.Data = "" },
			wantPath: "spec.data", wantMsg: []string{"data is required", "production, masked, synthetic, subset"}},
		{name: "data unknown", spec: staging(), edit: func(s *Spec) { s.Data = "anonymized" },
			wantPath: "spec.data", wantMsg: []string{`did you mean "masked"`}},
		{name: "runtime unknown", spec: staging(), edit: func(s *Spec) { s.Runtime = "nomad" },
			wantPath: "spec.runtime", wantMsg: []string{`runtime "nomad" is not allowed`, "one of: local, kubernetes"}},
		{name: "kubernetes without its settings", spec: staging(), edit: func(s *Spec) { s.Runtime = RuntimeKubernetes },
			wantPath: "spec.kubernetes", wantMsg: []string{"kubeconfig: PATH, namespace: NAME"}},
		{name: "kubernetes settings on local", spec: staging(), edit: func(s *Spec) { s.Kubernetes = &Kubernetes{Kubeconfig: "/k", Namespace: "ns"} },
			wantPath: "spec.kubernetes", wantMsg: []string{"runtime: kubernetes only"}},
		{name: "kubeconfig relative", spec: staging(), edit: func(s *Spec) {
			s.Runtime, s.Kubernetes = RuntimeKubernetes, &Kubernetes{Kubeconfig: "kube.yaml", Namespace: "ns", Traffic: "service"}
		}, wantPath: "spec.kubernetes.kubeconfig", wantMsg: []string{"absolute path"}},
		{name: "namespace invalid", spec: staging(), edit: func(s *Spec) {
			s.Runtime, s.Kubernetes = RuntimeKubernetes, &Kubernetes{Kubeconfig: "/k", Namespace: "Shop.Prod", Traffic: "service"}
		}, wantPath: "spec.kubernetes.namespace", wantMsg: []string{"DNS label"}},
		{name: "gateway traffic without a gateway", spec: staging(), edit: func(s *Spec) {
			s.Runtime, s.Kubernetes = RuntimeKubernetes, &Kubernetes{Kubeconfig: "/k", Namespace: "shop"}
		}, wantPath: "spec.kubernetes.gateway", wantMsg: []string{"needs the Gateway"}},
		{name: "production data outside production", spec: staging(), edit: func(s *Spec) { s.Data = DataProduction },
			wantPath: "spec.data", wantMsg: []string{"staging environment must not hold production data", "masked, synthetic or subset"}},
		{name: "production data in preproduction", spec: staging(), edit: func(s *Spec) { s.Tier = TierPreproduction; s.Data = DataProduction },
			wantPath: "spec.data", wantMsg: []string{"preproduction environment must not hold production data"}},
		{name: "production below cluster without waiver", spec: prod(), edit: func(s *Spec) { s.Isolation.Level = LevelNode },
			wantPath: "spec.isolation.level", wantMsg: []string{"needs isolation level cluster or stronger", "got node", "isolation.waiver"}},
		{name: "waiver reason missing", spec: prod(), edit: func(s *Spec) { s.Isolation.Level = LevelLabels; s.Isolation.Waiver = waiver("") },
			wantPath: "spec.isolation.waiver.reason", wantMsg: []string{"at least 10 characters", "got no reason"}},
		{name: "waiver reason too short", spec: prod(), edit: func(s *Spec) { s.Isolation.Level = LevelLabels; s.Isolation.Waiver = waiver("  pilot   ") },
			wantPath: "spec.isolation.waiver.reason", wantMsg: []string{`the reason "pilot"`}},
		{name: "waiver on non-production", spec: staging(), edit: func(s *Spec) { s.Isolation.Waiver = waiver("single machine for now") },
			wantPath: "spec.isolation.waiver", wantMsg: []string{"only applies to a production-tier", "remove the waiver"}},
		{name: "waiver with nothing to waive", spec: prod(), edit: func(s *Spec) { s.Isolation.Waiver = waiver("single machine for now") },
			wantPath: "spec.isolation.waiver", wantMsg: []string{"nothing to waive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.spec
			if tt.edit != nil {
				tt.edit(&s)
			}
			err := Validate(s)
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("Validate: unexpected error %v", err)
				}
				return
			}
			var pe *resource.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate: got %v, want a *resource.PathError at %s", err, tt.wantPath)
			}
			if pe.Path != tt.wantPath {
				t.Errorf("path = %q, want %q (message %q)", pe.Path, tt.wantPath, pe.Msg)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(pe.Msg, w) {
					t.Errorf("message %q does not contain %q", pe.Msg, w)
				}
			}
		})
	}
}

func TestLevelOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		l, m Level
		want bool
	}{
		{LevelLabels, LevelLabels, true},
		{LevelLabels, LevelNamespace, false},
		{LevelNamespace, LevelLabels, true},
		{LevelNode, LevelCluster, false},
		{LevelCluster, LevelCluster, true},
		{LevelEnvironment, LevelCluster, true},
		{"bogus", LevelLabels, false},
		{"bogus", "other", false},
	}
	for _, tt := range tests {
		if got := tt.l.AtLeast(tt.m); got != tt.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tt.l, tt.m, got, tt.want)
		}
	}
}

const doc = `apiVersion: airlock.dev/v1
kind: Environment
metadata:
  name: prod
spec:
  tier: production
  isolation:
    level: node
    network: prod-net
    credentials: prod-vault
  data: production
`

func TestDecodePointsAtField(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	_, err := s.Decode("prod.yaml", []byte(doc))
	var des resource.DecodeErrors
	if !errors.As(err, &des) || len(des) != 1 {
		t.Fatalf("Decode: got %v, want one field error", err)
	}
	if des[0].Line != 8 || des[0].Path != "spec.isolation.level" {
		t.Errorf("error at line %d path %q, want line 8 path spec.isolation.level: %v", des[0].Line, des[0].Path, des[0])
	}
}

func TestDecodeDefaultsRuntime(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	objs, err := s.Decode("prod.yaml", []byte(strings.Replace(doc, "level: node", "level: cluster", 1)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var spec Spec
	if err := objs[0].DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.Runtime != RuntimeLocal {
		t.Errorf("stored runtime = %q, want %q written back as the default", spec.Runtime, RuntimeLocal)
	}
	if k, ok := s.Lookup("envs"); !ok || k.Name != "Environment" || !k.Declarative {
		t.Errorf("Lookup(envs) = %+v, %v; want the declarative Environment kind", k, ok)
	}
}

func TestDecodeWaiverExpires(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	in := strings.Replace(doc, "    credentials: prod-vault\n",
		"    credentials: prod-vault\n    waiver:\n      reason: one machine during the pilot\n      expires: 2027-01-31T00:00:00Z\n", 1)
	in = strings.Replace(in, "level: node", "level: labels", 1)
	objs, err := s.Decode("prod.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var spec Spec
	if err := objs[0].DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	if w := spec.Isolation.Waiver; w == nil || w.Expires == nil || !w.Expires.Equal(want) {
		t.Errorf("waiver = %+v, want expires %v", w, want)
	}
}
