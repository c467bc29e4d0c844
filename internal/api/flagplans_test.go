package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

func TestFlagPlanCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	docs := quickstart + `---
apiVersion: airlock.dev/v1
kind: Segment
metadata: {name: internal-users}
spec: {when: {attribute: email, op: endsWith, value: "@shop.example"}}
---
apiVersion: airlock.dev/v1
kind: FlagPlan
metadata: {name: shop.new-checkout.prod}
spec:
  flag: shop.new-checkout.prod
  variant: "on"
  steps: [{segments: [internal-users]}, {percent: 1}, {percent: 10}]
  advance: {every: 24h}
`
	// The flag as it stands before the plan (stored directly: a production
	// flag applied over the API awaits approval).
	fo := &resource.Object{APIVersion: resource.APIVersion, Kind: flag.KindName, Metadata: resource.Metadata{Name: "shop.new-checkout.prod"}}
	if err := fo.SetSpec(flag.Spec{App: "shop", Environment: "prod", Key: "new-checkout", Type: flag.Boolean,
		Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "off"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
		_, err := tx.Create(ctx, fo)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The plan of a production flag starts once a tech lead approves its
	// first step.
	code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", docs)
	if code != 200 || !strings.Contains(string(body), `"action": "proposed"`) {
		t.Fatalf("apply: %d %s", code, body)
	}
	var applied api.ApplyResponse
	if err := json.Unmarshal(body, &applied); err != nil {
		t.Fatal(err)
	}
	start := applied.Results[len(applied.Results)-1].Change
	if code, body := e.do("POST", "/api/v1/flagchanges/"+start+"/approve", e.tokens[auth.TechLead], "application/json", `{"reason":"plan reviewed"}`); code != 200 {
		t.Fatalf("approve the plan's start %s: %d %s", start, code, body)
	}
	ctl := &plan.Controller{Store: e.store, Apply: e.api.FlagPlans.Apply}
	if _, err := ctl.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	p := "/api/v1/flagplans/shop.new-checkout.prod/"
	for _, tt := range []struct {
		path, token, body string
		want              int
		has               string
	}{
		{p + "pause", e.admin, `{}`, 400, "reason"},
		{p + "pause", e.tokens[auth.Auditor], `{"reason":"x"}`, 403, ""},
		{"/api/v1/flagplans/nope/pause", e.admin, `{"reason":"x"}`, 404, ""},
		{p + "resume", e.admin, `{"reason":"x"}`, 422, "not paused"},
		{p + "advance", e.tokens[auth.Deployer], `{"reason":"staff like it"}`, 200, `"step": 1`},
		{p + "pause", e.admin, `{"reason":"black friday"}`, 200, `"phase": "Paused"`},
		{p + "advance", e.admin, `{"reason":"x"}`, 422, "resume it first"},
		{p + "resume", e.admin, `{"reason":"x"}`, 200, `"phase": "Running"`},
		{p + "cancel", e.admin, `{"reason":"x"}`, 200, `"phase": "Cancelled"`},
		{p + "cancel", e.admin, `{"reason":"x"}`, 422, "already Cancelled"},
	} {
		code, body := e.do("POST", tt.path, tt.token, "application/json", tt.body)
		if code != tt.want || !strings.Contains(string(body), tt.has) {
			t.Errorf("POST %s: %d %s, want %d with %q", tt.path, code, body, tt.want, tt.has)
		}
	}
	code, body = e.do("GET", "/api/v1/flags/shop.new-checkout.prod", e.admin, "", "")
	if code != 200 || !strings.Contains(string(body), `"weight": 1`) {
		t.Errorf("the flag after the plan's manual advance: %d %s, want a 1%% split", code, body)
	}
}
