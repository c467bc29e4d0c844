package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/resource"
)

func stages(envs ...string) Spec {
	var p Spec
	for _, e := range envs {
		p.Stages = append(p.Stages, Stage{Environment: e})
	}
	return p
}

// wantPathError fails t unless err is a PathError at path whose message
// holds every string in msg; an empty path means err must be nil.
func wantPathError(t *testing.T, err error, path string, msg ...string) {
	t.Helper()
	if path == "" {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var pe *resource.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *resource.PathError at %s", err, path)
	}
	if pe.Path != path {
		t.Errorf("path = %q, want %q (message %q)", pe.Path, path, pe.Msg)
	}
	for _, m := range msg {
		if !strings.Contains(pe.Msg, m) {
			t.Errorf("message %q does not contain %q", pe.Msg, m)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     Spec
		wantPath string
		wantMsg  []string
	}{
		{name: "three stages", spec: stages("dev", "staging", "prod")},
		{name: "two stages", spec: stages("dev", "prod")},
		{name: "no stages", spec: Spec{}, wantPath: "spec.stages", wantMsg: []string{"at least 2 stages (got 0)"}},
		{name: "one stage", spec: stages("prod"), wantPath: "spec.stages", wantMsg: []string{"(got 1)", "non-production"}},
		{name: "empty environment", spec: stages("dev", ""), wantPath: "spec.stages[1].environment", wantMsg: []string{"stage 2 names no environment"}},
		{name: "invalid name", spec: stages("Dev", "prod"), wantPath: "spec.stages[0].environment", wantMsg: []string{`name "Dev" is invalid`}},
		{name: "repeated environment", spec: stages("dev", "staging", "dev", "prod"), wantPath: "spec.stages[2].environment", wantMsg: []string{`"dev" is already stage 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantPathError(t, Validate(tt.spec), tt.wantPath, tt.wantMsg...)
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	envs := map[string]environment.Spec{
		"dev":     {Tier: environment.TierDevelopment},
		"staging": {Tier: environment.TierStaging},
		"prod":    {Tier: environment.TierProduction},
		"prod-eu": {Tier: environment.TierProduction},
	}
	tests := []struct {
		name     string
		spec     Spec
		envs     map[string]environment.Spec
		wantPath string
		wantMsg  []string
	}{
		{name: "dev staging prod", spec: stages("dev", "staging", "prod"), envs: envs},
		{name: "dev prod", spec: stages("dev", "prod"), envs: envs},
		{name: "unknown environment", spec: stages("dev", "qa", "prod"), envs: envs,
			wantPath: "spec.stages[1].environment", wantMsg: []string{`"qa" does not exist`, "known environments: dev, prod, prod-eu, staging"}},
		{name: "no environments at all", spec: stages("dev", "prod"), envs: nil,
			wantPath: "spec.stages[0].environment", wantMsg: []string{"known environments: none"}},
		{name: "does not end in production", spec: stages("dev", "staging"), envs: envs,
			wantPath: "spec.stages[1].environment", wantMsg: []string{"must end in a production-tier environment", `"staging" is staging`}},
		{name: "starts in production", spec: stages("prod", "prod-eu"), envs: envs,
			wantPath: "spec.stages[0].environment", wantMsg: []string{"starts in production environment \"prod\"", "at least one non-production"}},
		{name: "production before the end", spec: stages("dev", "prod", "staging", "prod-eu"), envs: envs,
			wantPath: "spec.stages[1].environment", wantMsg: []string{`"prod" is stage 2 of 4`, "only be the last stage"}},
		{name: "production in the middle, non-production last", spec: stages("dev", "prod", "staging"), envs: envs,
			wantPath: "spec.stages[1].environment", wantMsg: []string{"only be the last stage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantPathError(t, Check(tt.spec, tt.envs), tt.wantPath, tt.wantMsg...)
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	in := `apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  stages:
    - environment: dev
    - environment: prod
    - environment: dev
`
	_, err := s.Decode("p.yaml", []byte(in))
	var des resource.DecodeErrors
	if !errors.As(err, &des) || len(des) != 1 {
		t.Fatalf("Decode: got %v, want one field error", err)
	}
	if des[0].Line != 8 || des[0].Path != "spec.stages[2].environment" {
		t.Errorf("error at line %d path %q, want line 8 spec.stages[2].environment: %v", des[0].Line, des[0].Path, des[0])
	}
	if k, ok := s.Lookup("pipe"); !ok || k.Name != "Pipeline" {
		t.Errorf("Lookup(pipe) = %v, %v", k, ok)
	}
}

func TestIndex(t *testing.T) {
	t.Parallel()
	p := stages("dev", "staging", "prod")
	if got := p.Index("staging"); got != 1 {
		t.Errorf("Index(staging) = %d, want 1", got)
	}
	if got := p.Index("qa"); got != -1 {
		t.Errorf("Index(qa) = %d, want -1", got)
	}
	if got := strings.Join(p.Environments(), ","); got != "dev,staging,prod" {
		t.Errorf("Environments() = %s", got)
	}
}

func TestValidateGates(t *testing.T) {
	t.Parallel()
	p := stages("dev", "test", "staging", "prod")
	p.Stages[1].Gates = []gate.Spec{{Type: "tests"}, {Type: "coverage", MinPercent: 80}}
	p.Stages[2].Gates = []gate.Spec{{Type: "sast", MaxSeverity: "urgent"}}
	wantPathError(t, Validate(p), "spec.stages[2].gates[0].maxSeverity", `unknown severity "urgent"`)

	p.Stages[2].Gates = []gate.Spec{{Type: "sca", Suppressions: []gate.Suppression{{ID: "CVE-2024-1", Reason: "r", Owner: "o"}}}}
	wantPathError(t, Validate(p), "spec.stages[2].gates[0].suppressions[0].expires", "a suppression needs expires")

	p.Stages[2].Gates = []gate.Spec{{Type: "sbom"}, {Type: "smoke"}}
	wantPathError(t, Validate(p), "spec.stages[2].gates[1].type", `unknown gate type "smoke"`, "known types: tests, coverage")

	p.Stages[2].Gates = []gate.Spec{{Type: "expression", Expression: "facts[\"x\"] >"}}
	wantPathError(t, Validate(p), "spec.stages[2].gates[0].expression", "CEL:", "Syntax error")

	p.Stages[2].Gates = nil
	wantPathError(t, Validate(p), "")
}

func TestGatesFor(t *testing.T) {
	t.Parallel()
	p := stages("dev", "test", "staging", "prod")
	p.Stages[0].Gates = []gate.Spec{{Type: "sbom"}}
	p.Stages[1].Gates = []gate.Spec{{Type: "tests"}, {Type: "coverage", MinPercent: 70}}
	p.Stages[2].Gates = []gate.Spec{{Type: "tests", Suite: "e2e"}}
	p.Stages[3].Gates = []gate.Spec{{Type: "coverage", MinPercent: 85}, {Type: "tests", Suite: "smoke"}}
	names := func(specs []gate.Spec) string {
		var out []string
		for _, s := range specs {
			n := s.Name
			if n == "" {
				n = s.DefaultName()
			}
			if s.MinPercent != 0 {
				n += fmt.Sprintf("(%g)", s.MinPercent)
			}
			out = append(out, n)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		cumulative bool
		to, want   string
	}{
		{false, "dev", "sbom"},
		{false, "staging", "tests-e2e"},
		{false, "prod", "coverage(85),tests-smoke"},
		{true, "dev", "sbom"},
		{true, "test", "sbom,tests-unit,coverage(70)"},
		{true, "staging", "sbom,tests-unit,coverage(70),tests-e2e"},
		{true, "prod", "sbom,tests-unit,coverage(85),tests-e2e,tests-smoke"},
	}
	for _, tt := range tests {
		p.Cumulative = tt.cumulative
		got, err := p.GatesFor(tt.to)
		if err != nil {
			t.Fatalf("GatesFor(%s): %v", tt.to, err)
		}
		if names(got) != tt.want {
			t.Errorf("cumulative=%v GatesFor(%s) = %s, want %s", tt.cumulative, tt.to, names(got), tt.want)
		}
		if _, err := gate.Compile(got); err != nil {
			t.Errorf("cumulative=%v GatesFor(%s) does not compile: %v", tt.cumulative, tt.to, err)
		}
	}
	if _, err := p.GatesFor("qa"); err == nil || !strings.Contains(err.Error(), `"qa" is not a stage`) {
		t.Errorf("GatesFor(qa) error = %v", err)
	}
	for _, tt := range []struct {
		to, want string
		ok       bool
	}{{"dev", "", false}, {"test", "dev", true}, {"prod", "staging", true}, {"qa", "", false}} {
		if got, ok := p.Previous(tt.to); got != tt.want || ok != tt.ok {
			t.Errorf("Previous(%s) = %q, %v; want %q, %v", tt.to, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeGates(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	in := `apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  cumulative: true
  stages:
    - environment: dev
    - environment: prod
      gates:
        - type: sast
          maxSeverity: medium
          suppressions:
            - {id: G401, reason: cache keys, owner: alice, expires: "2026-06-30"}
        - type: perf
          maxP95Ms: 300
          maxErrorRate: 0.01
          maxLatency: 5
`
	_, err := s.Decode("p.yaml", []byte(in))
	var des resource.DecodeErrors
	if !errors.As(err, &des) || len(des) != 1 || des[0].Path != "spec.stages[1].gates[1].maxLatency" || des[0].Line != 17 {
		t.Fatalf("Decode: got %v, want one error at line 17 spec.stages[1].gates[1].maxLatency", err)
	}
	objs, err := s.Decode("p.yaml", []byte(strings.Replace(in, "          maxLatency: 5\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	var p Spec
	if err := objs[0].DecodeSpec(&p); err != nil {
		t.Fatal(err)
	}
	g := p.Stages[1].Gates
	if !p.Cumulative || len(g) != 2 || g[0].Suppressions[0].Expires != "2026-06-30" || *g[1].MaxErrorRate != 0.01 || g[1].MaxP95Ms != 300 {
		t.Errorf("decoded %+v", p)
	}
	bad := strings.Replace(in, "          maxLatency: 5\n", "", 1)
	bad = strings.Replace(bad, "maxSeverity: medium", "maxSeverity: severe", 1)
	_, err = s.Decode("p.yaml", []byte(bad))
	if !errors.As(err, &des) || des[0].Path != "spec.stages[1].gates[0].maxSeverity" || des[0].Line != 11 {
		t.Errorf("Decode with a bad severity: got %v, want line 11 spec.stages[1].gates[0].maxSeverity", err)
	}
}
