package application

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/resource"
)

func intp(n int) *int { return &n }

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

func shop() Spec {
	return Spec{Owners: []string{"team-shop", "alice@example.com"}, Pipeline: "default", UserFacing: true}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		edit     func(*Spec)
		wantPath string
		wantMsg  []string
	}{
		{name: "minimal"},
		{name: "settings", edit: func(a *Spec) {
			a.Environments = map[string]EnvSettings{"dev": {Replicas: intp(0)}, "prod": {Replicas: intp(3), Listen: "127.0.0.1:8080"}, "staging": {Listen: "[::1]:80"}}
		}},
		{name: "listen on all interfaces", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Listen: ":8080"}} }},
		{name: "no owners", edit: func(a *Spec) { a.Owners = nil },
			wantPath: "spec.owners", wantMsg: []string{"at least one owner"}},
		{name: "empty owner", edit: func(a *Spec) { a.Owners = []string{"team-shop", ""} },
			wantPath: "spec.owners[1]", wantMsg: []string{"owner 2 is empty"}},
		{name: "owner with space", edit: func(a *Spec) { a.Owners = []string{"team shop"} },
			wantPath: "spec.owners[0]", wantMsg: []string{"contains spaces"}},
		{name: "owner too long", edit: func(a *Spec) { a.Owners = []string{strings.Repeat("a", 254)} },
			wantPath: "spec.owners[0]", wantMsg: []string{"the limit is 253"}},
		{name: "duplicate owner", edit: func(a *Spec) { a.Owners = []string{"bob", "alice", "bob"} },
			wantPath: "spec.owners[2]", wantMsg: []string{`"bob" is listed twice (also owner 1)`}},
		{name: "signoffs", edit: func(a *Spec) { a.Signoffs = []string{"accessibility", "compliance"} }},
		{name: "invalid signoff kind", edit: func(a *Spec) { a.Signoffs = []string{"Accessibility"} },
			wantPath: "spec.signoffs[0]", wantMsg: []string{"sign-off kind", `"Accessibility" is invalid`}},
		{name: "duplicate signoff kind", edit: func(a *Spec) { a.Signoffs = []string{"uat", "compliance", "uat"} },
			wantPath: "spec.signoffs[2]", wantMsg: []string{`"uat" is listed twice (also signoffs[0])`}},
		{name: "no pipeline", edit: func(a *Spec) { a.Pipeline = "" },
			wantPath: "spec.pipeline", wantMsg: []string{"pipeline is required"}},
		{name: "invalid pipeline name", edit: func(a *Spec) { a.Pipeline = "Default" },
			wantPath: "spec.pipeline", wantMsg: []string{`"Default" is invalid`}},
		{name: "invalid environment key", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"Prod": {}} },
			wantPath: "spec.environments.Prod", wantMsg: []string{`"Prod" is invalid`}},
		{name: "negative replicas", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Replicas: intp(-1)}} },
			wantPath: "spec.environments.dev.replicas", wantMsg: []string{"between 0 and 1000, got -1"}},
		{name: "too many replicas", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Replicas: intp(1001)}} },
			wantPath: "spec.environments.dev.replicas", wantMsg: []string{"got 1001"}},
		{name: "listen without port", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Listen: "localhost"}} },
			wantPath: "spec.environments.dev.listen", wantMsg: []string{"not host:port", "127.0.0.1:8080"}},
		{name: "listen port not a number", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Listen: "localhost:http"}} },
			wantPath: "spec.environments.dev.listen", wantMsg: []string{`port "http" must be a number from 1 to 65535`}},
		{name: "listen port zero", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Listen: "localhost:0"}} },
			wantPath: "spec.environments.dev.listen", wantMsg: []string{"1 to 65535"}},
		{name: "listen port too big", edit: func(a *Spec) { a.Environments = map[string]EnvSettings{"dev": {Listen: "localhost:65536"}} },
			wantPath: "spec.environments.dev.listen", wantMsg: []string{"1 to 65535"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := shop()
			if tt.edit != nil {
				tt.edit(&a)
			}
			wantPathError(t, Validate(a), tt.wantPath, tt.wantMsg...)
		})
	}
}

func TestDecodeDefaultsReplicas(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	in := `apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec:
  owners: [team-shop]
  pipeline: default
  environments:
    dev: {}
    prod: {replicas: 0, listen: "127.0.0.1:8080"}
`
	objs, err := s.Decode("shop.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var a Spec
	if err := objs[0].DecodeSpec(&a); err != nil {
		t.Fatal(err)
	}
	if r := a.Environments["dev"].Replicas; r == nil || *r != 1 {
		t.Errorf("dev replicas = %v, want the default 1 written back", r)
	}
	if r := a.Environments["prod"].Replicas; r == nil || *r != 0 {
		t.Errorf("prod replicas = %v, want the declared 0 kept", r)
	}
	if got := a.Settings("staging").ReplicaCount(); got != 1 {
		t.Errorf("Settings(staging).ReplicaCount() = %d, want 1", got)
	}
}

func TestDecodePointsAtListen(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	Register(s)
	in := `apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec:
  owners: [team-shop]
  pipeline: default
  environments:
    dev:
      listen: "8080"
`
	_, err := s.Decode("shop.yaml", []byte(in))
	var des resource.DecodeErrors
	if !errors.As(err, &des) || len(des) != 1 {
		t.Fatalf("Decode: got %v, want one field error", err)
	}
	if des[0].Line != 9 || des[0].Path != "spec.environments.dev.listen" {
		t.Errorf("error at line %d path %q, want line 9: %v", des[0].Line, des[0].Path, des[0])
	}
}
