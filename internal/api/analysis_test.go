package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

const analysisDoc = `apiVersion: airlock.dev/v1
kind: AnalysisTemplate
metadata: {name: checkout}
spec:
  interval: 5s
  triggers:
  - {name: error-rate, metric: error-rate, above: {points: 2}, for: 2m, action: rollback-canary}
  - {name: synthetic, metric: probes, failures: 2, action: rollback, confirm: true}
  probes:
  - {name: home, url: "http://{{listen}}/", headers: {X-Airlock-Version: "{{version}}"}, interval: 10s}
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec:
  owners: [team-shop]
  pipeline: default
  environments:
    prod:
      strategy: {type: canary}
      analysis:
        template: checkout
        triggers:
        - {name: latency-p99, metric: latency-p99, above: {percent: 50}, for: 1m, action: rollback-canary}
`

func TestApplyAnalysisTemplates(t *testing.T) {
	e := newEnv(t)
	e.seed()
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", analysisDoc); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	if code, body := e.do("GET", "/api/v1/analysistemplates/checkout", e.admin, "", ""); code != 200 || !strings.Contains(string(body), `"failures": 2`) {
		t.Fatalf("get: %d %s", code, body)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"a bad interval", "interval: 5s", "interval: 5 seconds", "spec.interval"},
		{"an unknown trigger metric", "metric: error-rate,", "metric: cpu,", "spec.triggers[0].metric"},
		{"an unknown action", "action: rollback-canary}\n  - {name: synthetic", "action: explode}\n  - {name: synthetic", "spec.triggers[0].action"},
		{"a probe with credentials", `url: "http://{{listen}}/"`, `url: "http://u:p@example.com/"`, "spec.probes[0].url"},
		{"an application trigger without a limit", "above: {percent: 50}, ", "", "spec.environments.prod.analysis.triggers[0]"},
		{"an unknown field", "interval: 5s", "intervall: 5s", "intervall"},
	} {
		doc := strings.Replace(analysisDoc, tc.from, tc.to, 1)
		if doc == analysisDoc {
			t.Fatalf("%s: the replacement did not apply", tc.name)
		}
		code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", doc)
		if code != 400 || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, code, body, tc.want)
		}
	}
	// Nothing of the refused documents was stored.
	_, body := e.do("GET", "/api/v1/analysistemplates/checkout", e.admin, "", "")
	if !strings.Contains(string(body), `"interval": "5s"`) {
		t.Errorf("a refused apply changed the template: %s", body)
	}
	// An environment's policy names actions.
	code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", strings.Replace(quickstart, "tier: production", "tier: production\n  analysis: {automatic: [continue, launch]}", 1))
	if code != 400 || !strings.Contains(string(body), "spec.analysis.automatic[1]") {
		t.Errorf("a bad policy: %d %s", code, body)
	}
}

// A person's accept of a verdict that a paused rollout waits on carries
// out its action in the same request.
func TestAcceptingAWaitingVerdictActsOnTheRollout(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	one := 0
	ro := &resource.Object{APIVersion: resource.APIVersion, Kind: rollout.Kind, Metadata: resource.Metadata{Name: "shop.prod.2",
		Labels: map[string]string{"app": "shop", "environment": "prod", rollout.CurrentLabel: "true", rollout.PhaseLabel: "Paused"}}}
	_ = ro.SetSpec(rollout.Spec{App: "shop", Environment: "prod", Candidate: rollout.Version{Version: "1.1.0"}, Stable: &rollout.Version{Version: "1.0.0"},
		Strategy: application.Strategy{Type: application.Canary}, Analysis: &application.Analysis{}})
	_ = ro.SetStatus(rollout.Status{Phase: rollout.Paused, Step: one, Analysis: &rollout.AnalysisStatus{Awaiting: "shop.prod.2.1.1"}})
	spec := verdict.Spec{App: "shop", Environment: "prod", Version: "1.1.0", Subject: verdict.Subject{Kind: rollout.Kind, Name: "shop.prod.2"},
		Outcome: verdict.Fail, Summary: "error rate 7.9% vs 1.1% baseline over 1,240 requests, p < 0.001", Judge: analysis.JudgeName,
		Action: application.ActionRollbackCanary, Confidence: 0.999}
	if err := e.store.Write(ctx, store.Actor{Name: analysis.JudgeName}, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, ro); err != nil {
			return err
		}
		_, err := verdict.Record(ctx, tx, "shop.prod.2.1.1", spec)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if code, body := e.do("POST", "/api/v1/verdicts/shop.prod.2.1.1/accept", e.tokens[auth.Deployer], "application/json", `{"reason":"real"}`); code != 403 {
		t.Fatalf("a deployer accepted: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/verdicts/shop.prod.2.1.1/accept", e.tokens[auth.SRE], "application/json", `{"reason":"checkout errors are real"}`); code != 200 {
		t.Fatalf("accept: %d %s", code, body)
	}
	o, err := e.store.Get(ctx, rollout.Kind, "shop.prod.2")
	if err != nil {
		t.Fatal(err)
	}
	_, st, _ := rollout.Decode(o)
	if r := st.AnalysisRequest; r == nil || r.Action != application.ActionRollbackCanary || r.Verdict != "shop.prod.2.1.1" || !strings.Contains(r.Reason, "decided by") {
		t.Fatalf("rollout request %+v", st.AnalysisRequest)
	}
	vo, _ := e.store.Get(ctx, verdict.Kind, "shop.prod.2.1.1")
	v, _ := verdict.Decode(vo)
	if v.Status.Executed == nil || v.Status.Executed.Action != application.ActionRollbackCanary || v.Status.Accepted == nil {
		t.Fatalf("verdict status %+v", v.Status)
	}
	if got := e.auditActions(rollout.Kind, "shop.prod.2"); !strings.Contains(got, "update") {
		t.Errorf("the rollout's change is not audited: %s", got)
	}
}

// The status matrix is served from memory and follows changes to the
// rollouts: a new current rollout, a phase change, and a rollout that
// stops being current.
func TestStatusIndexFollowsRollouts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	put := func(name, app, phase string, current bool) {
		t.Helper()
		err := e.store.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
			o, err := tx.Get(ctx, rollout.Kind, name)
			if err != nil {
				o = &resource.Object{APIVersion: resource.APIVersion, Kind: rollout.Kind, Metadata: resource.Metadata{Name: name}}
			} else {
				o = o.DeepCopy()
			}
			o.Metadata.Labels = map[string]string{"app": app, "environment": "prod"}
			if current {
				o.Metadata.Labels[rollout.CurrentLabel] = "true"
			}
			o.SetSpec(rollout.Spec{App: app, Environment: "prod", Candidate: rollout.Version{Version: "2.0.0"}, Stable: &rollout.Version{Version: "1.0.0"}, Replicas: 2})
			o.SetStatus(rollout.Status{Phase: rollout.Phase(phase), Weight: 10})
			if err != nil {
				_, err = tx.Create(ctx, o)
			} else {
				_, err = tx.Update(ctx, o)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	get := func(want string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			_, body := e.do("GET", "/api/v1/status", e.admin, "", "")
			if strings.Contains(string(body), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %s lacks %s", body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	put("cart.prod.1", "cart", "Progressing", true)
	get(`"rollout": "cart.prod.1"`)
	put("shop.prod.1", "shop", "Progressing", true)
	get(`"rollout": "shop.prod.1"`)
	put("shop.prod.1", "shop", "Succeeded", true)
	get(`"phase": "Succeeded"`)
	put("cart.prod.1", "cart", "Succeeded", false)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, body := e.do("GET", "/api/v1/status", e.admin, "", "")
		if !strings.Contains(string(body), "cart.prod.1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a rollout no longer current is still listed: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, body := e.do("GET", "/api/v1/status?app=cart", e.admin, "", "")
	if string(body) != "{\n  \"items\": []\n}\n" && !strings.Contains(string(body), `"items": []`) {
		t.Fatalf("?app=cart: %s", body)
	}
}
