package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/cli"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

func (e *env) recordVerdict(name, env, judge string, o verdict.Outcome, signals ...verdict.Signal) {
	e.t.Helper()
	s := verdict.Spec{App: "shop", Environment: env, Version: "1.0.0", Subject: verdict.Subject{Kind: "Rollout", Name: "shop." + env + ".1"},
		Outcome: o, Summary: "error rate 7.9% vs 1.1% baseline", Signals: signals, Judge: judge}
	if err := e.store.Write(context.Background(), store.Actor{Name: "system:analysis"}, func(tx store.Tx) error {
		_, err := verdict.Record(context.Background(), tx, name, s)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) auditActions(kind, name string) string {
	e.t.Helper()
	var out []string
	if err := e.store.Audit().Entries(context.Background(), store.AuditFilter{Kind: kind}, func(en audit.Entry) error {
		if en.Name == name {
			out = append(out, en.Actor+":"+en.Action)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return strings.Join(out, ",")
}

func TestVerdictDecisions(t *testing.T) {
	e := newEnv(t)
	e.seed()
	fail := func(n string) verdict.Signal { return verdict.Signal{Name: n, Outcome: verdict.Fail} }
	pass := func(n string) verdict.Signal { return verdict.Signal{Name: n, Outcome: verdict.Pass} }
	e.recordVerdict("shop-prod-1", "prod", "analysis/canary", verdict.Fail, fail("error-rate"), pass("latency-p99"))
	e.recordVerdict("shop-prod-2", "prod", "analysis/canary", verdict.Fail, fail("error-rate"), fail("latency-p99"))
	e.recordVerdict("shop-prod-3", "prod", "as-sre", verdict.Fail, fail("error-rate"))
	lead, sre := e.tokens[auth.TechLead], e.tokens[auth.SRE]

	// A tech lead for dev alone may not decide on a prod verdict.
	devLead, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "test"}, auth.CreateRequest{Name: "dev-lead", Roles: []auth.Role{auth.TechLead}, Environments: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, path, token, body string
		code                    int
		want                    string
	}{
		{"another environment's approver", "/api/v1/verdicts/shop-prod-1/override", devLead.Token, `{"reason":"noise","outcome":"pass"}`, 403, ""},
		{"a deployer", "/api/v1/verdicts/shop-prod-1/accept", e.tokens[auth.Deployer], `{"reason":"fine"}`, 403, ""},
		{"no reason", "/api/v1/verdicts/shop-prod-1/override", lead, `{"reason":" ","outcome":"pass"}`, 400, "reason is required"},
		{"an unknown outcome", "/api/v1/verdicts/shop-prod-1/override", lead, `{"reason":"noise","outcome":"great"}`, 400, "pass, fail or inconclusive"},
		{"absent", "/api/v1/verdicts/nope/accept", lead, `{"reason":"x"}`, 404, ""},
		{"override", "/api/v1/verdicts/shop-prod-1/override", lead, `{"reason":"load test traffic, not users","outcome":"pass"}`, 200, `"outcome": "pass"`},
		{"decided already", "/api/v1/verdicts/shop-prod-1/accept", sre, `{"reason":"agree"}`, 422, "already overridden"},
		{"accept", "/api/v1/verdicts/shop-prod-2/accept", sre, `{"reason":"checkout errors are real"}`, 200, `"accepted"`},
		{"the judge itself", "/api/v1/verdicts/shop-prod-3/override", sre, `{"reason":"my own call","outcome":"pass"}`, 422, "may not override"},
	}
	for _, s := range steps {
		code, body := e.do("POST", s.path, s.token, "application/json", s.body)
		if code != s.code || !strings.Contains(string(body), s.want) {
			t.Errorf("%s: %d %s, want %d containing %q", s.name, code, body, s.code, s.want)
		}
	}
	if got, want := e.auditActions(verdict.Kind, "shop-prod-1"), "system:analysis:create,as-tech-lead:refused-override,as-tech-lead:refused-override,as-tech-lead:update,as-sre:refused-accept"; got != want {
		t.Errorf("audit of shop-prod-1:\n got %s\nwant %s", got, want)
	}
	if got, want := e.auditActions(verdict.Kind, "shop-prod-3"), "system:analysis:create,as-sre:refused-override"; got != want {
		t.Errorf("audit of shop-prod-3:\n got %s\nwant %s", got, want)
	}

	code, body := e.do("GET", "/api/v1/verdicts/overrides?environment=prod", e.tokens[auth.Auditor], "", "")
	if code != 200 {
		t.Fatalf("overrides: %d %s", code, body)
	}
	var got api.OverridesResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []verdict.SignalCount{{Signal: "error-rate", Verdicts: 3, Overridden: 1, Rate: 1.0 / 3}, {Signal: "latency-p99", Verdicts: 2}}
	if len(got.Items) != 2 || got.Items[0] != want[0] || got.Items[1] != want[1] {
		t.Fatalf("overrides: %+v, want %+v", got.Items, want)
	}
	if code, body := e.do("GET", "/api/v1/verdicts/overrides?environment=dev", e.tokens[auth.Auditor], "", ""); code != 200 || !strings.Contains(string(body), `"items": []`) {
		t.Fatalf("overrides in dev: %d %s", code, body)
	}
}

func TestPromotionSucceededMarker(t *testing.T) {
	e := newEnv(t)
	e.seed()
	sinks := `apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: timeline}
spec: {type: webhook, url: "https://hooks.example.com/timeline", events: [promotion.succeeded]}
---
apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: alerts}
spec: {type: webhook, url: "https://hooks.example.com/alerts"}
`
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", sinks); code != 200 {
		t.Fatalf("apply sinks: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/promotions", e.tokens[auth.Deployer], "application/json", `{"app":"shop","version":"1.0.0","to":"dev"}`); code/100 != 2 || !strings.Contains(string(body), "Succeeded") {
		t.Fatalf("promote to dev: %d %s", code, body)
	}
	objs, err := e.store.List(context.Background(), notify.NotificationKind, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%d notifications, want the marker for the timeline sink only (a sink without a list gets no markers)", len(objs))
	}
	var n notify.NotificationSpec
	if err := objs[0].DecodeSpec(&n); err != nil {
		t.Fatal(err)
	}
	if n.Event != notify.PromotionSucceeded || n.Sink != "timeline" || n.Data["app"] != "shop" || n.Data["environment"] != "dev" || n.Data["version"] != "1.0.0" || n.Data["promotion"] == "" {
		t.Fatalf("marker: %+v", n)
	}
}

// TestVerdictCLI drives airlock verdict list, override, accept and
// overrides against this real server.
func TestVerdictCLI(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.recordVerdict("shop-prod-1", "prod", "analysis/canary", verdict.Fail, verdict.Signal{Name: "error-rate", Outcome: verdict.Fail})
	e.recordVerdict("shop-prod-2", "prod", "analysis/canary", verdict.Fail, verdict.Signal{Name: "error-rate", Outcome: verdict.Fail})
	run := func(token string, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := cli.Execute(append([]string{"--server", e.srv.URL, "--token", token}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	lead := e.tokens[auth.TechLead]
	steps := []struct {
		token  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{lead, []string{"verdict", "override", "shop-prod-1", "--reason", "noise"}, 2, "", "--outcome is required"},
		{lead, []string{"verdict", "accept", "shop-prod-1"}, 2, "", "--reason is required"},
		{lead, []string{"verdict", "override", "shop-prod-1", "--outcome", "pass", "--reason", "load test traffic"}, 0, "verdict/shop-prod-1 overridden to pass by as-tech-lead\n", ""},
		{lead, []string{"verdict", "accept", "shop-prod-1", "--reason", "agree"}, 3, "", "already overridden"},
		{e.tokens[auth.SRE], []string{"verdict", "accept", "shop-prod-2", "--reason", "real errors"}, 0, "verdict/shop-prod-2 accepted by as-sre\n", ""},
		{e.tokens[auth.Auditor], []string{"verdict", "list", "--env", "prod"}, 0, "shop-prod-1   shop   prod   1.0.0     Rollout/shop.prod.1   pass (was fail)   -        analysis/canary   overridden to pass by as-tech-lead", ""},
		{e.tokens[auth.Auditor], []string{"verdict", "show", "shop-prod-1"}, 0, "verdict/shop-prod-1  PASS (was FAIL)  shop 1.0.0 in prod\n  subject     Rollout/shop.prod.1, step 1\n  summary     error rate 7.9% vs 1.1% baseline\n", ""},
		{e.tokens[auth.Auditor], []string{"verdict", "show", "shop-prod-1"}, 0, "  decision    overridden to pass by as-tech-lead\n", ""},
		{e.tokens[auth.Auditor], []string{"verdict", "show", "shop-prod-1"}, 0, "  signals:\n    error-rate  fail", ""},
		{e.tokens[auth.Auditor], []string{"verdict", "show", "nope"}, 1, "", "not found"},
		{e.tokens[auth.Auditor], []string{"verdict", "overrides"}, 0, "SIGNAL       VERDICTS   OVERRIDDEN   RATE\nerror-rate   2          1            50.0%\n", ""},
		{e.tokens[auth.Auditor], []string{"verdict", "overrides", "--app", "cart"}, 0, "", "No verdicts found."},
	}
	for _, s := range steps {
		code, out, errOut := run(s.token, s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("airlock %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}
}
