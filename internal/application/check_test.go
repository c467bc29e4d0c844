package application_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Check is tested from outside the package: its tests use pipeline.Spec,
// and pipeline imports gate, which imports application.

func wantPathErr(t *testing.T, err error, path string, msg ...string) {
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

func TestCheck(t *testing.T) {
	t.Parallel()
	pipes := map[string]pipeline.Spec{
		"default": {Stages: []pipeline.Stage{{Environment: "dev"}, {Environment: "staging"}, {Environment: "prod"}}},
		"fast":    {Stages: []pipeline.Stage{{Environment: "dev"}, {Environment: "prod"}}},
	}
	tests := []struct {
		name     string
		app      application.Spec
		pipes    map[string]pipeline.Spec
		wantPath string
		wantMsg  []string
	}{
		{name: "pipeline exists", app: application.Spec{Pipeline: "default"}, pipes: pipes},
		{name: "settings for stages", app: application.Spec{Pipeline: "default", Environments: map[string]application.EnvSettings{"staging": {}, "prod": {}}}, pipes: pipes},
		{name: "unknown pipeline", app: application.Spec{Pipeline: "slow"}, pipes: pipes,
			wantPath: "spec.pipeline", wantMsg: []string{`pipeline "slow" does not exist`, "known pipelines: default, fast"}},
		{name: "no pipelines", app: application.Spec{Pipeline: "default"}, pipes: nil,
			wantPath: "spec.pipeline", wantMsg: []string{"known pipelines: none"}},
		{name: "settings for environment not in pipeline", app: application.Spec{Pipeline: "fast", Environments: map[string]application.EnvSettings{"dev": {}, "staging": {}}}, pipes: pipes,
			wantPath: "spec.environments.staging", wantMsg: []string{`"staging" is not a stage of pipeline "fast"`, "stages are dev, prod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantPathErr(t, application.Check(tt.app, tt.pipes), tt.wantPath, tt.wantMsg...)
		})
	}
}
