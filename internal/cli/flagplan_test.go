package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/server"
)

func flagPlanJSON(t *testing.T, st plan.Status) string {
	t.Helper()
	o := &resource.Object{APIVersion: resource.APIVersion, Kind: plan.Kind, Metadata: resource.Metadata{Name: "shop.new-checkout.prod"}}
	if err := o.SetSpec(plan.Spec{Flag: "shop.new-checkout.prod", Variant: "on", Steps: []plan.Step{
		{Segments: []string{"internal-users"}}, {Percent: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100},
	}, Advance: plan.Advance{Every: "24h"}}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetStatus(st); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runPlanCLI runs "airlock flags plan ARGS" against url, with the plan
// command on its own (it is hooked into "airlock flags" separately).
func runPlanCLI(t *testing.T, url string, argv ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{EnvServer: url, EnvToken: "alk_test"}
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }, now: func() time.Time { return testNow },
		serve: func(context.Context, server.Config) error { t.Error("the server was started"); return nil }}
	cmd := a.flagsPlanCommand()
	cmd.SetArgs(argv)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return exitCode(cmd.ExecuteContext(context.Background())), out.String(), errOut.String()
}

func TestFlagsPlanGet(t *testing.T) {
	t.Parallel()
	started, next := testNow.Add(-2*time.Hour), testNow.Add(22*time.Hour)
	body := flagPlanJSON(t, plan.Status{Phase: plan.Running, Step: 2, StepStartedAt: &started, NextAt: &next, Message: "step 2 of 4 (10%) applied",
		History: []plan.Event{{At: started, Step: 2, Actor: "system:flag-plan", Message: "step 2 of 4 (10%) applied"}}})
	f, url := newFake(t, map[string]route{"GET /api/v1/flagplans/shop.new-checkout.prod": {200, body}})
	code, out, errOut := runPlanCLI(t, url, "get", "shop.new-checkout.prod")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"flagplan/shop.new-checkout.prod  Running",
		`releasing variant "on"`,
		"✓ 1  1%",
		"▶ 2  10%",
		"next       step 3 at 2026-11-28 13:00 UTC (in 22h)",
		"2h ago  step 2  system:flag-plan  step 2 of 4 (10%) applied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if r := f.last(); r.Method != "GET" {
		t.Errorf("request %+v", r)
	}
	code, out, _ = runPlanCLI(t, url, "get", "shop.new-checkout.prod", "-o", "json")
	var o resource.Object
	if code != 0 || json.Unmarshal([]byte(out), &o) != nil || o.Kind != plan.Kind {
		t.Errorf("-o json: exit %d, output %s", code, out)
	}
}

func TestFlagsPlanSteer(t *testing.T) {
	t.Parallel()
	body := flagPlanJSON(t, plan.Status{Phase: plan.Paused, Step: 1, Message: "paused by ana: black friday"})
	f, url := newFake(t, map[string]route{
		"POST /api/v1/flagplans/shop.new-checkout.prod/pause":   {200, body},
		"POST /api/v1/flagplans/shop.new-checkout.prod/advance": problem(422, "flag plan shop.new-checkout.prod is paused"),
	})
	code, out, errOut := runPlanCLI(t, url, "pause", "shop.new-checkout.prod", "--reason", "black friday")
	if code != 0 || !strings.Contains(out, "flagplan/shop.new-checkout.prod: Paused at step 1: paused by ana: black friday") {
		t.Fatalf("pause: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if r := f.last(); r.Body != `{"reason":"black friday"}` {
		t.Errorf("pause sent %q", r.Body)
	}
	if code, _, _ := runPlanCLI(t, url, "advance", "shop.new-checkout.prod", "--reason", "go"); code != ExitBlocked {
		t.Errorf("a refused advance exits %d, want %d", code, ExitBlocked)
	}
	n := f.count()
	if code, _, _ := runPlanCLI(t, url, "resume", "shop.new-checkout.prod"); code != ExitUsage {
		t.Errorf("resume without --reason exits %d, want %d", code, ExitUsage)
	}
	if f.count() != n {
		t.Error("resume without --reason reached the server")
	}
}
