package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// env is one test server over a real SQLite file.
type env struct {
	t      testing.TB
	api    *api.API
	srv    *httptest.Server
	store  store.Store
	dbPath string
	admin  string
	tokens map[auth.Role]string
}

func newEnv(t testing.TB) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with the server's services adjusted by configure
// (given the data directory) before the API is built.
func newEnvWith(t testing.TB, configure func(dir string, d *api.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "airlock.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := auth.NewTokens(st)
	if _, err := tokens.Bootstrap(ctx, dir); err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(dir, auth.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	deps := server.NewDeps(st, audit.NewSigner(key), nil, nil)
	if configure != nil {
		configure(dir, &deps)
	}
	a := api.New(deps)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	e := &env{t: t, api: a, srv: srv, store: st, dbPath: filepath.Join(dir, "airlock.db"), admin: strings.TrimSpace(string(admin)), tokens: map[auth.Role]string{}}
	for _, r := range auth.Roles {
		req := auth.CreateRequest{Name: "as-" + string(r), Roles: []auth.Role{r}}
		if r == auth.Evaluator {
			req.Environments = []string{"dev"} // an evaluation key belongs to one environment
		}
		issued, err := tokens.Create(ctx, store.Actor{Name: "test"}, req)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = issued.Token
	}
	return e
}

const quickstart = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, isolation: {level: labels, network: dev-net, credentials: dev-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, isolation: {level: labels, network: staging-net, credentials: staging-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  data: production
  isolation:
    level: labels
    network: prod-net
    credentials: prod-vault
    waiver: {reason: "single machine: the local runtime shares one host"}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec: {stages: [{environment: dev}, {environment: staging}, {environment: prod}]}
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec: {owners: [team-shop], pipeline: default}
`

type sqlDB = sql.DB

func (e *env) do(method, path, token, contentType, body string) (int, []byte) {
	e.t.Helper()
	h := map[string]string{}
	if contentType != "" {
		h["Content-Type"] = contentType
	}
	return e.doHeaders(method, path, token, h, body)
}

func (e *env) doHeaders(method, path, token string, headers map[string]string, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(path, "/api/v1/watch/") || path == "/ofrep/v1/changes" {
		return resp.StatusCode, nil
	}
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (e *env) seed() {
	e.t.Helper()
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", quickstart); code != 200 {
		e.t.Fatalf("seed apply: %d %s", code, body)
	}
	rel := fmt.Sprintf(`{"app":"shop","version":"1.0.0","artifact":{"digest":"sha256:%s"},"commit":"9f2c1e7"}`, strings.Repeat("ab", 32))
	if code, body := e.do("POST", "/api/v1/releases", e.tokens[auth.CI], "application/json", rel); code != 201 {
		e.t.Fatalf("seed release: %d %s", code, body)
	}
}

// TestAuthorizationMatrix walks every route with every role (and with no
// token) and checks that exactly the roles the permission table names get
// past authorization. A route added without a rule panics at registration;
// a rule that lets the wrong role in fails here.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	e.seed()
	names := map[string]string{ // an existing object of each kind
		"environments": "dev", "pipelines": "default", "applications": "shop",
		"releases": "shop-1.0.0", "tokens": "victim", "rolebindings": "nobody",
	}
	bodies := map[string]string{
		"POST /api/v1/releases":                       `{"app":"shop","version":"9.9.9","artifact":{"digest":"sha256:` + strings.Repeat("cd", 32) + `"},"commit":"abcdef1"}`,
		"POST /api/v1/tokens":                         `{"name":"x","roles":["auditor"]}`,
		"POST /api/v1/promotions":                     `{"app":"shop","version":"1.0.0","to":"dev"}`,
		"POST /api/v1/incidents":                      `{"severity":"sev3","summary":"matrix"}`,
		"POST /api/v1/promotions/{name}/approve":      `{"reason":"matrix"}`,
		"POST /api/v1/promotions/{name}/reject":       `{"reason":"matrix"}`,
		"POST /api/v1/incidents/{name}/close":         `{"resolution":"matrix"}`,
		"POST /api/v1/reviews/{name}/complete":        `{"outcome":"accepted","reason":"matrix"}`,
		"POST /api/v1/changes":                        `{"app":"shop","version":"1.0.0","environment":"dev","summary":"matrix","risk":"low","rollbackPlan":"redeploy 0.9"}`,
		"POST /api/v1/changes/{name}/approve":         `{"reason":"matrix"}`,
		"POST /api/v1/changes/{name}/reject":          `{"reason":"matrix"}`,
		"POST /api/v1/changes/{name}/close":           `{"reason":"matrix"}`,
		"POST /api/v1/flags/{name}/set":               `{"enabled":false,"reason":"matrix"}`,
		"POST /api/v1/flagchanges/{name}/approve":     `{"reason":"matrix"}`,
		"POST /api/v1/flagplans/{name}/advance":       `{"reason":"matrix"}`,
		"POST /api/v1/access":                         `{"environment":"prod","resource":"absent","role":"readonly","for":"1h","reason":"matrix test access"}`,
		"POST /api/v1/access/{name}/approve":          `{"reason":"matrix"}`,
		"POST /api/v1/access/{name}/deny":             `{"reason":"matrix"}`,
		"POST /api/v1/access/{name}/revoke":           `{"reason":"matrix"}`,
		"POST /api/v1/flagplans/{name}/pause":         `{"reason":"matrix"}`,
		"POST /api/v1/flagplans/{name}/resume":        `{"reason":"matrix"}`,
		"POST /api/v1/flagplans/{name}/cancel":        `{"reason":"matrix"}`,
		"POST /api/v1/flagchanges/{name}/reject":      `{"reason":"matrix"}`,
		"POST /api/v1/flagchanges/{name}/withdraw":    `{"reason":"matrix"}`,
		"POST /api/v1/verdicts/{name}/accept":         `{"reason":"matrix"}`,
		"POST /api/v1/verdicts/{name}/override":       `{"reason":"matrix","outcome":"pass"}`,
		"PUT /api/v1/releases/{name}/artifact":        `not the artifact`,
		"POST /api/v1/rollouts/{app}/{env}/{command}": `{"reason":"matrix"}`,
		"POST /api/v1/keys":                           `{"name":"k","publicKey":"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n","identity":"ci"}`,
		"POST /api/v1/apply":                          "apiVersion: airlock.dev/v1\nkind: Environment\nmetadata: {name: dev}\nspec: {tier: development, data: synthetic, isolation: {level: labels, network: dev-net, credentials: dev-vault}}\n",
	}
	routes := e.api.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		kinds := []string{""}
		if strings.Contains(rt.Path, "{resource}") {
			kinds = []string{"environments", "pipelines", "applications", "releases", "tokens", "rolebindings"}
		}
		for _, plural := range kinds {
			path := strings.ReplaceAll(rt.Path, "{resource}", plural)
			name := names[plural]
			if rt.Path == "/api/v1/tokens/{name}" {
				name = "victim-" + plural
			}
			if rt.Path == "/api/v1/incidents/{name}/close" {
				name = "inc-20000101-001" // absent: 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/changes/{name}/") {
				name = "chg-20000101-001" // absent: 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/flagchanges/{name}/") {
				name = "fch-20000101-001" // absent: 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/verdicts/{name}/") {
				name = "absent" // 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/breakglass/{name}/") {
				name = "absent" // 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/access/{name}/") {
				name = "acc-20000101-001" // absent: 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/flagplans/{name}/") {
				name = "shop.absent.prod" // absent: 404 once authorized
			}
			if rt.Path == "/api/v1/flags/{name}/set" {
				name = "shop.absent.prod" // absent: 404 once authorized
			}
			if rt.Path == "/api/v1/reviews/{name}/complete" {
				name = "shop-1.0.0.to.prod" // absent: 404 once authorized
			}
			if strings.HasPrefix(rt.Path, "/api/v1/promotions/{name}/") {
				name = "shop-1.0.0.to.prod" // absent: 404 once authorized
			}
			if rt.Path == "/api/v1/releases/{name}/artifact" {
				name = "shop-1.0.0"
			}
			path = strings.NewReplacer("{app}", "shop", "{env}", "prod", "{command}", "pause").Replace(path)
			path = strings.ReplaceAll(path, "{name}", name)
			if strings.HasPrefix(rt.Path, "/api/v1/watch/") {
				continue // streams; covered below with a deadline
			}
			body := bodies[rt.Method+" "+rt.Path]
			if body == "" && (rt.Method == "POST" || rt.Method == "PUT") && plural != "" {
				code, got := e.do("GET", "/api/v1/"+plural+"/"+names[plural], e.admin, "", "")
				if code == 200 {
					body = string(got)
				} else {
					body = `{}`
				}
			}
			action := rt.Action
			if rt.Verb != "" {
				action = auth.ActionFor(rt.Verb, kindOf(plural))
			}

			if rt.Public {
				if code, _ := e.do(rt.Method, path, "", "application/json", body); code == 401 || code == 403 {
					t.Errorf("%s %s is public but answered %d without a token", rt.Method, path, code)
				}
				continue
			}
			if code, _ := e.do(rt.Method, path, "", "application/json", body); code != 401 {
				t.Errorf("%s %s without a token: %d, want 401", rt.Method, path, code)
			}
			if code, _ := e.do(rt.Method, path, "alk_admin_forged", "application/json", body); code != 401 {
				t.Errorf("%s %s with a forged token: %d, want 401", rt.Method, path, code)
			}
			for _, role := range auth.Roles {
				allowed := slices.Contains(auth.AllowedRoles(action), role)
				code, resp := e.do(rt.Method, path, e.tokens[role], "application/json", body)
				if allowed && (code == 401 || code == 403) {
					t.Errorf("%s %s as %s: %d %s; the table allows %s", rt.Method, path, role, code, resp, action)
				}
				if !allowed && code != 403 {
					t.Errorf("%s %s as %s: %d, want 403 (%s is for %v)", rt.Method, path, role, code, action, auth.AllowedRoles(action))
				}
			}
		}
	}
}

func kindOf(plural string) string {
	return map[string]string{
		"environments": "Environment", "pipelines": "Pipeline", "applications": "Application",
		"releases": "Release", "tokens": "Token", "rolebindings": "RoleBinding",
	}[plural]
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newEnv(t)
	code, body := e.do("GET", "/api/v1/openapi.json", "", "", "")
	if code != 200 {
		t.Fatalf("openapi: %d", code)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	for _, rt := range e.api.Routes() {
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s %s is not in the OpenAPI document", rt.Method, rt.Path)
			continue
		}
		if op["summary"] == "" || op["operationId"] == "" {
			t.Errorf("%s %s lacks a summary or operationId", rt.Method, rt.Path)
		}
	}
}
