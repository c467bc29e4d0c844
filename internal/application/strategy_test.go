package application

import (
	"strings"
	"testing"
)

func TestValidateStrategy(t *testing.T) {
	t.Parallel()
	zero, two := 0, 2
	for _, tc := range []struct {
		s    Strategy
		path string // "" when valid
		msg  string
	}{
		{Strategy{}, "", ""},
		{Strategy{Type: BlueGreen, RollbackWindow: "30m", SmokePath: "/smoke"}, "", ""},
		{Strategy{Type: Canary, Steps: []CanaryStep{{Weight: 20, Pause: "30s"}, {Weight: 100, Pause: ManualPause}}}, "", ""},
		{Strategy{Type: Rolling, MaxSurge: &two, MaxUnavailable: &zero}, "", ""},
		{Strategy{Type: "linear"}, "s.type", "not one of blueGreen, canary, rolling"},
		{Strategy{Type: Rolling, Steps: []CanaryStep{{Weight: 100}}}, "s.steps", "apply to a canary"},
		{Strategy{Steps: []CanaryStep{{Weight: 50}, {Weight: 25}}}, "s.steps[1].weight", "must rise"},
		{Strategy{Steps: []CanaryStep{{Weight: 50}}}, "s.steps", "must reach weight 100"},
		{Strategy{Steps: []CanaryStep{{Weight: 100, Pause: "forever"}}}, "s.steps[0].pause", `pause "forever"`},
		{Strategy{Type: Rolling, MaxSurge: &zero, MaxUnavailable: &zero}, "s.maxSurge", "cannot both be 0"},
		{Strategy{RollbackWindow: "-1m"}, "s.rollbackWindow", "above 0"},
		{Strategy{SmokePath: "smoke"}, "s.smokePath", "must start with /"},
	} {
		err := ValidateStrategy("s", tc.s)
		if tc.path == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.s, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.path+":") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want %s: ...%s", tc.s, err, tc.path, tc.msg)
		}
	}
	r := Strategy{}.Resolved()
	if r.Type != Canary || len(r.Steps) != 5 || r.Steps[0].Weight != 5 || *r.MaxSurge != 1 || *r.MaxUnavailable != 0 {
		t.Fatalf("defaults: %+v", r)
	}
	if d, manual := (CanaryStep{Weight: 5}).PauseFor(); d != DefaultSoak || manual {
		t.Fatalf("default pause %s %v", d, manual)
	}
}

func TestEnvVarsAreChecked(t *testing.T) {
	t.Parallel()
	base := Spec{Owners: []string{"team"}, Pipeline: "default"}
	for _, tc := range []struct {
		s    EnvSettings
		want string
	}{
		{EnvSettings{Env: map[string]string{"1BAD": "x"}}, "spec.environments.prod.env.1BAD"},
		{EnvSettings{Env: map[string]string{"PORT": "80"}}, "PORT is set by the runtime"},
		{EnvSettings{SecretEnv: map[string]string{"DB_PASSWORD": "hunter2!"}}, "not the secret itself"},
		{EnvSettings{HealthPath: "healthz"}, "must start with /"},
	} {
		s := base
		s.Environments = map[string]EnvSettings{"prod": tc.s}
		if err := Validate(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.s, err, tc.want)
		}
	}
}
