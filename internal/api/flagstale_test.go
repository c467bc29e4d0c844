package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// testClock is a clock a test moves; the store and the API read it.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.Set(t)
	return c
}

// newClockEnv is newEnv with one clock for the store and the API.
func newClockEnv(t *testing.T, clock *testClock) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "airlock.db"), sqlstore.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewTokens(st).Bootstrap(ctx, dir); err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(dir, auth.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	d := server.NewDeps(st, audit.NewSigner(key), nil, nil)
	d.Now = clock.Now
	a := api.New(d)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &env{t: t, api: a, srv: srv, store: st, admin: strings.TrimSpace(string(admin)), tokens: map[auth.Role]string{}}
}

const staleEnvironments = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, isolation: {level: labels, network: staging-net, credentials: staging-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: qa}
spec: {tier: staging, data: masked, isolation: {level: labels, network: qa-net, credentials: qa-vault}}
`

// TestStaleFlags runs stale-flag detection end to end: flags in a real
// SQLite store, evaluations over OFREP (HTTP), usage flushed to the
// flags' status, and GET /api/v1/flags/stale as the clock moves on.
func TestStaleFlags(t *testing.T) {
	t0 := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	const day = 24 * time.Hour
	clock := newTestClock(t0)
	e := newClockEnv(t, clock)
	ctx := context.Background()
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", staleEnvironments); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	uniformSince := `{"uniformSince":"2026-10-01T09:00:00Z","uniformVariant":"on"}`
	// The flags are written straight to the store (as a flag change
	// would apply them), with the status a write records.
	for _, f := range []struct {
		app, key, env string
		spec          string // JSON fields added to a boolean flag serving "on"
		status        string
	}{
		{"shop", "checkout", "staging", ``, uniformSince},
		{"shop", "ops-switch", "staging", `"lifecycle":"operational",`, uniformSince},
		{"shop", "banner", "staging", ``, ``}, // uniform, but the status does not say since when
		{"shop", "split", "staging", `"fractional":[{"variant":"on","weight":50},{"variant":"off","weight":50}],`, ``},
		{"web", "theme", "qa", ``, uniformSince},
	} {
		obj := &resource.Object{APIVersion: resource.APIVersion, Kind: flag.KindName, Metadata: resource.Metadata{Name: flag.Name(f.app, f.key, f.env)}}
		obj.Spec = json.RawMessage(`{"app":"` + f.app + `","environment":"` + f.env + `","key":"` + f.key + `",` + f.spec +
			`"type":"boolean","variants":{"on":true,"off":false},"defaultVariant":"on","enabled":true}`)
		if f.status != "" {
			obj.Status = json.RawMessage(f.status)
		}
		if err := e.store.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
			_, err := tx.Create(ctx, obj)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	evalKey := func(env string) string {
		issued, err := auth.NewTokens(e.store).Create(ctx, store.Actor{Name: "admin"}, auth.CreateRequest{Name: "eval-" + env, Roles: []auth.Role{auth.Evaluator}, Environments: []string{env}})
		if err != nil {
			t.Fatal(err)
		}
		return issued.Token
	}
	staging, qa := evalKey("staging"), evalKey("qa")
	evalOne := func(key string) {
		t.Helper()
		if code, body := e.do("POST", "/ofrep/v1/evaluate/flags/"+key, staging, "application/json", `{"context":{"targetingKey":"u1"}}`); code != 200 {
			t.Fatalf("evaluate %s: %d %s", key, code, body)
		}
	}
	// evalBulk evaluates every qa flag, sending etag as If-None-Match,
	// and returns the answer's ETag.
	evalBulk := func(etag string, wantCode int) string {
		t.Helper()
		req, err := http.NewRequest("POST", e.srv.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+qa)
		req.Header.Set("Content-Type", "application/json")
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantCode {
			t.Fatalf("bulk evaluation: %d %s, want %d", resp.StatusCode, body, wantCode)
		}
		return resp.Header.Get("ETag")
	}
	flush := func(want int) {
		t.Helper()
		if n, err := e.api.FlushFlagUsage(ctx); err != nil || n != want {
			t.Fatalf("flush: %d flags updated, %v; want %d", n, err, want)
		}
	}
	type finding struct{ name, kind, since string }
	stale := func(query string) []finding {
		t.Helper()
		code, body := e.do("GET", "/api/v1/flags/stale"+query, e.admin, "", "")
		if code != 200 {
			t.Fatalf("stale%s: %d %s", query, code, body)
		}
		var got api.StaleFlags
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if !got.Now.Equal(clock.Now()) {
			t.Fatalf("now %s, want the API clock's %s", got.Now, clock.Now())
		}
		out := []finding{}
		for _, f := range got.Items {
			out = append(out, finding{f.Name, f.Kind, f.Since.Format(time.DateOnly)})
			if f.Reason == "" || !strings.Contains(f.Suggestion, "airlock delete flag "+f.Name) {
				t.Errorf("finding %+v: no reason, or a suggestion without the delete command", f)
			}
		}
		return out
	}
	expect := func(when, query string, want ...finding) {
		t.Helper()
		if want == nil {
			want = []finding{}
		}
		if got := stale(query); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, stale%s:\n got %v\nwant %v", when, query, got, want)
		}
	}

	// Day 0: checkout and ops-switch evaluated one by one, every qa flag
	// in bulk. An admin trying staging's flags is no client using them.
	// Nothing is stale yet.
	evalOne("checkout")
	evalOne("ops-switch")
	evalBulk("", 200)
	if code, body := e.do("POST", "/ofrep/v1/evaluate/flags/banner?environment=staging", e.admin, "application/json", `{"context":{"targetingKey":"u1"}}`); code != 200 {
		t.Fatalf("an admin evaluating banner: %d %s", code, body)
	}
	if code, body := e.do("POST", "/ofrep/v1/evaluate/flags?environment=staging", e.admin, "application/json", `{"context":{"targetingKey":"u1"}}`); code != 200 {
		t.Fatalf("an admin evaluating every staging flag: %d %s", code, body)
	}
	flush(3)
	for _, name := range []string{"shop.checkout.staging", "shop.ops-switch.staging", "web.theme.qa"} {
		obj, err := e.store.Get(ctx, flag.KindName, name)
		if err != nil {
			t.Fatal(err)
		}
		var st flag.Status
		if err := obj.DecodeStatus(&st); err != nil {
			t.Fatal(err)
		}
		if st.LastEvaluated == nil || !st.LastEvaluated.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) || st.UniformVariant != "on" || st.UniformSince == nil {
			t.Fatalf("%s status after the flush: %s", name, obj.Status)
		}
	}
	expect("day 0", "")
	etag := evalBulk("", 200) // after the flush: the ETag a client holds from now on
	flush(0)

	// Day 8: the operational flag is past its 7 days.
	clock.Set(t0.Add(8 * day))
	expect("day 8", "", finding{"shop.ops-switch.staging", "uniform", "2026-10-01"})

	// Day 20: checkout is evaluated again, and a bulk client polls qa with
	// its ETag (304: it still holds every flag).
	clock.Set(t0.Add(20 * day))
	evalOne("checkout")
	evalBulk(etag, 304)
	flush(2)

	// Day 31: what nobody evaluated for 30 days is unused.
	clock.Set(t0.Add(31 * day))
	expect("day 31", "",
		finding{"shop.banner.staging", "unused", "2026-10-01"},
		finding{"shop.ops-switch.staging", "uniform", "2026-10-01"},
		finding{"shop.ops-switch.staging", "unused", "2026-10-01"},
		finding{"shop.split.staging", "unused", "2026-10-01"},
	)

	// Day 41: the release flags serving one variant are past their 40
	// days; the split never is.
	clock.Set(t0.Add(41 * day))
	all := []finding{
		{"shop.banner.staging", "uniform", "2026-10-01"},
		{"shop.banner.staging", "unused", "2026-10-01"},
		{"shop.checkout.staging", "uniform", "2026-10-01"},
		{"shop.ops-switch.staging", "uniform", "2026-10-01"},
		{"shop.ops-switch.staging", "unused", "2026-10-01"},
		{"shop.split.staging", "unused", "2026-10-01"},
		{"web.theme.qa", "uniform", "2026-10-01"},
	}
	expect("day 41", "", all...)
	expect("day 41", "?app=web", all[6])
	expect("day 41", "?environment=qa", all[6])
	expect("day 41", "?app=shop&environment=staging", all[:6]...)
	expect("day 41", "?app=shop&environment=qa")

	// The findings explain themselves.
	code, body := e.do("GET", "/api/v1/flags/stale?app=shop", e.admin, "", "")
	if code != 200 || !strings.Contains(string(body), `serves \"on\" (true) to everyone since 2026-10-01 (41 days; lifetime 40 days)`) ||
		!strings.Contains(string(body), "replace evaluations of checkout with true in shop's code, then remove the flag (airlock delete flag shop.checkout.staging)") ||
		!strings.Contains(string(body), "not evaluated since 2026-10-01 (41 days; limit 30 days)") {
		t.Fatalf("stale?app=shop: %d %s", code, body)
	}
	// An evaluation key reads no findings.
	if code, _ := e.do("GET", "/api/v1/flags/stale", staging, "", ""); code != 403 {
		t.Fatalf("an evaluation key: %d, want 403", code)
	}
}

// TestFlagUsageLoopFlushesAtTheEnd: when the server stops, the loop
// writes what was evaluated since its last tick, so a clean stop loses no
// day.
func TestFlagUsageLoopFlushesAtTheEnd(t *testing.T) {
	clock := newTestClock(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
	e := newClockEnv(t, clock)
	ctx := context.Background()
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", staleEnvironments); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: flag.KindName, Metadata: resource.Metadata{Name: "shop.checkout.staging"},
		Spec: json.RawMessage(`{"app":"shop","environment":"staging","key":"checkout","type":"boolean","variants":{"on":true,"off":false},"defaultVariant":"on","enabled":true}`)}
	if err := e.store.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
		_, err := tx.Create(ctx, obj)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	key, err := auth.NewTokens(e.store).Create(ctx, store.Actor{Name: "admin"}, auth.CreateRequest{Name: "eval-staging", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.api.FlagUsageLoop(loopCtx, time.Hour) // no tick within the test
	}()
	if code, body := e.do("POST", "/ofrep/v1/evaluate/flags/checkout", key.Token, "application/json", `{"context":{"targetingKey":"u1"}}`); code != 200 {
		t.Fatalf("evaluate: %d %s", code, body)
	}
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not return after its context ended")
	}
	got, err := e.store.Get(ctx, flag.KindName, "shop.checkout.staging")
	if err != nil {
		t.Fatal(err)
	}
	var st flag.Status
	if err := got.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	if st.LastEvaluated == nil || !st.LastEvaluated.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("status after the loop stopped: %s", got.Status)
	}
}

// TestFlagUsageDoesNotSupersedeChanges: a usage write changes the flag's
// revision but not its spec, so a flag change proposed before it still
// applies when approved after it.
func TestFlagUsageDoesNotSupersedeChanges(t *testing.T) {
	clock := newTestClock(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
	e := newClockEnv(t, clock)
	ctx := context.Background()
	prod := `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  data: production
  isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: one machine}}
  flagChanges: {approvals: {tech-lead: 1}}
`
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", prod); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: flag.KindName, Metadata: resource.Metadata{Name: "shop.checkout.prod"},
		Spec: json.RawMessage(`{"app":"shop","environment":"prod","key":"checkout","type":"boolean","variants":{"on":true,"off":false},"defaultVariant":"on","enabled":true}`)}
	if err := e.store.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
		_, err := tx.Create(ctx, obj)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The admin proposes the kill switch; it waits for a tech lead.
	if code, body := e.do("POST", "/api/v1/flags/shop.checkout.prod/set", e.admin, "application/json", `{"enabled":false,"reason":"retire"}`); code != 202 {
		t.Fatalf("set: %d %s", code, body)
	}
	code, body := e.do("GET", "/api/v1/flagchanges?selector=flag%3Dshop.checkout.prod,phase%3DPending", e.admin, "", "")
	var pending struct{ Items []*resource.Object }
	if code != 200 || json.Unmarshal(body, &pending) != nil || len(pending.Items) != 1 {
		t.Fatalf("pending changes: %d %s", code, body)
	}
	// Meanwhile the flag is evaluated and the day recorded: a new revision.
	key, err := auth.NewTokens(e.store).Create(ctx, store.Actor{Name: "admin"}, auth.CreateRequest{Name: "eval-prod", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.do("POST", "/ofrep/v1/evaluate/flags/checkout", key.Token, "application/json", `{"context":{"targetingKey":"u1"}}`); code != 200 {
		t.Fatalf("evaluate: %d %s", code, body)
	}
	if n, err := e.api.FlushFlagUsage(ctx); err != nil || n != 1 {
		t.Fatalf("flush: %d, %v", n, err)
	}
	lead, err := auth.NewTokens(e.store).Create(ctx, store.Actor{Name: "admin"}, auth.CreateRequest{Name: "lead", Roles: []auth.Role{auth.TechLead}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.do("POST", "/api/v1/flagchanges/"+pending.Items[0].Metadata.Name+"/approve", lead.Token, "application/json", `{"reason":"ok"}`); code != 200 || !strings.Contains(string(body), "Applied") {
		t.Fatalf("approve after a usage write: %d %s", code, body)
	}
	got, err := e.store.Get(ctx, flag.KindName, "shop.checkout.prod")
	if err != nil {
		t.Fatal(err)
	}
	var spec flag.Spec
	var st flag.Status
	if err := got.DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if err := got.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	if spec.Enabled || st.LastEvaluated == nil || !st.LastEvaluated.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the approval: enabled %v, status %s (the change must apply and keep lastEvaluated)", spec.Enabled, got.Status)
	}
}
