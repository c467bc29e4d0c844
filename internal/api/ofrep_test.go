package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

const flagsYAML = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, isolation: {level: labels, network: staging-net, credentials: staging-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec: {tier: production, data: production, isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: one machine}}}
---
apiVersion: airlock.dev/v1
kind: Flag
metadata: {name: shop.new-checkout.prod}
spec:
  app: shop
  environment: prod
  key: new-checkout
  type: boolean
  variants: {"on": true, "off": false}
  defaultVariant: "off"
  enabled: ENABLED
  fractional: [{variant: "on", weight: 25}, {variant: "off", weight: 75}]
---
apiVersion: airlock.dev/v1
kind: Flag
metadata: {name: shop.new-checkout.staging}
spec:
  app: shop
  environment: staging
  key: new-checkout
  type: boolean
  variants: {"on": true, "off": false}
  defaultVariant: "on"
  enabled: true
---
apiVersion: airlock.dev/v1
kind: Flag
metadata: {name: shop.beta-banner.staging}
spec:
  app: shop
  environment: staging
  key: beta-banner
  type: string
  variants: {"plain": "Welcome", "beta": "Welcome to the beta"}
  defaultVariant: "plain"
  enabled: true
`

// TestOFREPWithTheOpenFeatureSDK evaluates flags through the real
// OpenFeature Go SDK and its OFREP provider against airlock over HTTP.
func TestOFREPWithTheOpenFeatureSDK(t *testing.T) {
	e := newEnv(t)
	apply := func(enabled string) {
		e.applyApproved(strings.Replace(flagsYAML, "ENABLED", enabled, 1))
	}
	apply("true")
	key := func(env string) string {
		issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: "shop-" + env, Roles: []auth.Role{auth.Evaluator}, Environments: []string{env}})
		if err != nil {
			t.Fatal(err)
		}
		return issued.Token
	}
	client := func(env, token string) *openfeature.Client {
		if err := openfeature.SetNamedProviderAndWait(env+t.Name(), ofrep.NewProvider(e.srv.URL, ofrep.WithBearerToken(token))); err != nil {
			t.Fatal(err)
		}
		return openfeature.NewClient(env + t.Name())
	}
	ctx := context.Background()
	staging, prod := client("staging", key("staging")), client("prod", key("prod"))

	d, err := staging.BooleanValueDetails(ctx, "new-checkout", false, openfeature.NewEvaluationContext("user-1", nil))
	if err != nil || !d.Value || d.Reason != openfeature.StaticReason || d.Variant != "on" {
		t.Fatalf("staging: %+v %v", d, err)
	}
	s, err := staging.StringValue(ctx, "beta-banner", "none", openfeature.NewEvaluationContext("user-1", nil))
	if err != nil || s != "Welcome" {
		t.Fatalf("string flag: %q %v", s, err)
	}

	// prod: 25% on by targeting key, the same answer every time for a user.
	on := 0
	for i := range 400 {
		uc := openfeature.NewEvaluationContext(fmt.Sprintf("user-%d", i), nil)
		v, err := prod.BooleanValueDetails(ctx, "new-checkout", false, uc)
		if err != nil || v.Reason != openfeature.SplitReason {
			t.Fatalf("prod: %+v %v", v, err)
		}
		again, _ := prod.BooleanValue(ctx, "new-checkout", false, uc)
		if again != v.Value {
			t.Fatalf("user-%d flipped between evaluations", i)
		}
		if v.Value {
			on++
		}
	}
	if on < 70 || on > 130 {
		t.Fatalf("%d of 400 users on at a 25%% rollout", on)
	}

	// A production key sees only production's flags.
	if _, err := prod.StringValue(ctx, "beta-banner", "none", openfeature.NewEvaluationContext("user-1", nil)); err == nil || !strings.Contains(err.Error(), "FLAG_NOT_FOUND") {
		t.Fatalf("a staging-only flag through a production key: %v", err)
	}
	// No targeting key for a split: the protocol's error, the default value.
	if v, err := prod.BooleanValue(ctx, "new-checkout", false, openfeature.EvaluationContext{}); err == nil || v {
		t.Fatalf("a split without a targeting key: %v %v", v, err)
	}

	// The kill switch: airlock answers DISABLED with the default variant
	// (off); the SDK then hands the caller its own default, as
	// OpenFeature specifies for a disabled flag.
	apply("false")
	for i := range 50 {
		v, err := prod.BooleanValueDetails(ctx, "new-checkout", false, openfeature.NewEvaluationContext(fmt.Sprintf("user-%d", i), nil))
		if err != nil || v.Value || v.Reason != openfeature.DisabledReason || v.Variant != "off" {
			t.Fatalf("after the kill switch: %+v %v", v, err)
		}
	}
}

func TestOFREPProtocol(t *testing.T) {
	e := newEnv(t)
	e.applyApproved(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: "shop-prod", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	k := issued.Token
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"targetingKey":"u1"}}`, 200, `"reason":"SPLIT"`},
		{"/ofrep/v1/evaluate/flags/missing", `{"context":{"targetingKey":"u1"}}`, 404, `"errorCode":"FLAG_NOT_FOUND"`},
		{"/ofrep/v1/evaluate/flags/new-checkout", `{"context":{}}`, 400, `"errorCode":"TARGETING_KEY_MISSING"`},
		{"/ofrep/v1/evaluate/flags/new-checkout", `{"context":[1,2]}`, 400, `"errorCode":"INVALID_CONTEXT"`},
		{"/ofrep/v1/evaluate/flags/new-checkout", `{"context":`, 400, `"errorCode":"PARSE_ERROR"`},
	} {
		code, body := e.do("POST", tc.path, k, "application/json", tc.body)
		if code != tc.code || !strings.Contains(compact(body), tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %s", tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
	// Bulk, with ETag: the same flags and context answer 304.
	code, body := e.do("POST", "/ofrep/v1/evaluate/flags", k, "application/json", `{"context":{"targetingKey":"u1"}}`)
	if code != 200 || !strings.Contains(compact(body), `"key":"new-checkout"`) || strings.Contains(string(body), "beta-banner") {
		t.Fatalf("bulk: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
	req.Header.Set("Authorization", "Bearer "+k)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	req, _ = http.NewRequest("POST", e.srv.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
	req.Header.Set("Authorization", "Bearer "+k)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d", etag, resp.StatusCode)
	}
	// An unscoped token (even one that could read everything) is no
	// evaluation key; an evaluation key reads nothing else.
	if code, body := e.do("POST", "/ofrep/v1/evaluate/flags/new-checkout", e.tokens[auth.Deployer], "application/json", `{}`); code != 403 {
		t.Fatalf("a deployer token: %d %s", code, body)
	}
	if code, _ := e.do("GET", "/api/v1/environments", k, "", ""); code != 403 {
		t.Fatalf("an evaluation key listing environments: %d", code)
	}
	if code, body := e.do("GET", "/ofrep/v1/configuration", k, "", ""); code != 200 || !strings.Contains(string(body), `"cacheInvalidation"`) {
		t.Fatalf("configuration: %d %s", code, body)
	}
}

// compact drops the indentation of a JSON answer.
// applyApproved applies doc as the admin and has a tech lead approve
// every flag change it proposed (production flags need approval).
func (e *env) applyApproved(doc string) {
	e.t.Helper()
	code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", doc)
	if code != 200 {
		e.t.Fatalf("apply: %d %s", code, body)
	}
	var resp api.ApplyResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		e.t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Action != catalog.Proposed {
			continue
		}
		if code, body := e.do("POST", "/api/v1/flagchanges/"+r.Change+"/approve", e.tokens[auth.TechLead], "application/json", `{"reason":"reviewed"}`); code != 200 {
			e.t.Fatalf("approve %s: %d %s", r.Change, code, body)
		}
	}
}

func compact(b []byte) string {
	return strings.Join(strings.Fields(string(b)), "")
}

// TestOFREPChangeStream: a client holding an evaluation key hears within a
// second that a flag of its environment changed, and nothing of others.
func TestOFREPChangeStream(t *testing.T) {
	e := newEnv(t)
	apply := func(doc string) {
		t.Helper()
		e.applyApproved(doc)
	}
	apply(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: "shop-prod", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/ofrep/v1/changes", nil)
	req.Header.Set("Authorization", "Bearer "+issued.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	// A staging change is not prod's business.
	apply(strings.Replace(strings.Replace(flagsYAML, "ENABLED", "true", 1), `defaultVariant: "plain"`, `defaultVariant: "beta"`, 1))
	select {
	case l := <-lines:
		t.Fatalf("a prod key heard of a staging change: %s", l)
	case <-time.After(300 * time.Millisecond):
	}
	// The kill switch in prod: proposed, then applied by its approval.
	code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", strings.Replace(flagsYAML, "ENABLED", "false", 1))
	var proposed api.ApplyResponse
	if err := json.Unmarshal(body, &proposed); code != 200 || err != nil {
		t.Fatalf("apply: %d %s", code, body)
	}
	change := ""
	for _, r := range proposed.Results {
		if r.Action == catalog.Proposed {
			change = r.Change
		}
	}
	if code, body := e.do("POST", "/api/v1/flagchanges/"+change+"/approve", e.tokens[auth.TechLead], "application/json", `{"reason":"kill it"}`); code != 200 {
		t.Fatalf("approve %s: %d %s", change, code, body)
	}
	applied := time.Now() // the change is committed by now
	select {
	case l := <-lines:
		if !strings.Contains(l, `"keys":["new-checkout"]`) {
			t.Fatalf("event %s", l)
		}
		if d := time.Since(applied); d > time.Second {
			t.Fatalf("the change arrived %s after it was applied", d)
		}
	case <-time.After(time.Second):
		t.Fatal("no change event within a second of the kill switch")
	}
}

// TestOFREPRateLimit: an evaluation key over its rate gets 429 with
// Retry-After; another key is not affected.
func TestOFREPRateLimit(t *testing.T) {
	e := newEnv(t)
	e.applyApproved(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	d := server.NewDeps(e.store, nil, nil, nil)
	d.OFREPRate = 1 // bursts of 2
	srv := httptest.NewServer(api.New(d))
	defer srv.Close()
	key := func(name string) string {
		issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: name, Roles: []auth.Role{auth.Evaluator}, Environments: []string{"prod"}})
		if err != nil {
			t.Fatal(err)
		}
		return issued.Token
	}
	eval := func(k string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/ofrep/v1/evaluate/flags/new-checkout", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
		req.Header.Set("Authorization", "Bearer "+k)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	a, b := key("app-a"), key("app-b")
	for i := range 2 {
		if resp := eval(a); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i+1, resp.StatusCode)
		}
	}
	resp := eval(a)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the rate: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := eval(b); resp.StatusCode != 200 {
		t.Fatalf("another key: %d", resp.StatusCode)
	}
}
