package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/environment"
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
