package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/server"
)

var testNow = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

// request is what the fake API saw.
type request struct {
	Method, Path, Query, Source, ContentType, Auth string
	Body                                           string
}

// route is the fake API's answer to "METHOD /path".
type route struct {
	status int
	body   string
}

// fakeAPI answers from a fixed table and records every request.
type fakeAPI struct {
	t      *testing.T
	routes map[string]route
	mu     sync.Mutex
	reqs   []request
}

func newFake(t *testing.T, routes map[string]route) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{t: t, routes: routes}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Source: r.Header.Get("X-Airlock-Source"),
		ContentType: r.Header.Get("Content-Type"), Auth: r.Header.Get("Authorization"), Body: string(b)})
	f.mu.Unlock()
	rt, ok := f.routes[r.Method+" "+r.URL.Path]
	if !ok {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	switch {
	case rt.status >= 400:
		w.Header().Set("Content-Type", "application/problem+json")
	case strings.HasPrefix(rt.body, "-----BEGIN"):
		w.Header().Set("Content-Type", "text/plain")
	default:
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rt.status)
	io.WriteString(w, rt.body)
}

func (f *fakeAPI) all() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func (f *fakeAPI) last() request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		f.t.Fatal("the fake API got no request")
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// runCLI runs one invocation against the server at url.
func runCLI(t *testing.T, url, stdin string, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{EnvServer: url, EnvToken: "alk_test"}
	a := &app{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv:   func(k string) string { return env[k] },
		now:      func() time.Time { return testNow },
		pollBase: time.Millisecond,
		serve: func(context.Context, server.Config) error {
			t.Error("the server was started")
			return nil
		},
	}
	code = a.run(context.Background(), argv)
	return code, out.String(), errOut.String()
}

func problem(status int, detail string, errs ...string) route {
	b, _ := json.Marshal(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail, "errors": errs})
	return route{status, string(b)}
}

func TestExitCodesForAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status     int
		wantCode   int
		wantStderr string
	}{
		{400, 1, "error: 1 problem\nq.yaml:3: Environment/prod: spec.tier: unknown\n"},
		{401, 1, "error: 1 problem\nq.yaml:3: Environment/prod: spec.tier: unknown\n"},
		{403, 3, "error: 1 problem\nq.yaml:3: Environment/prod: spec.tier: unknown\n"},
		{404, 1, "error: 1 problem\n"},
		{409, 1, "error: 1 problem\n"},
		{413, 1, "error: 1 problem\n"},
		{422, 3, "error: 1 problem\n"},
		{500, 1, "error: 1 problem\n"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			_, url := newFake(t, map[string]route{
				"GET /api/v1/environments/prod": problem(tt.status, "1 problem", "q.yaml:3: Environment/prod: spec.tier: unknown"),
			})
			code, stdout, stderr := runCLI(t, url, "", "get", "environments", "prod")
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if stdout != "" {
				t.Errorf("stdout = %q", stdout)
			}
			if !strings.HasPrefix(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want prefix %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestUnauthorizedWithoutTokenHints(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, map[string]route{"GET /api/v1/whoami": problem(401, "missing bearer token")})
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, now: time.Now,
		getenv: func(k string) string { return map[string]string{EnvServer: url}[k] }}
	if code := a.run(context.Background(), []string{"whoami"}); code != 1 {
		t.Errorf("exit code = %d", code)
	}
	if !strings.Contains(errOut.String(), "hint: no token was given") {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestUnreachableServerIsAnError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	code, _, stderr := runCLI(t, url, "", "get", "env")
	if code != 1 || !strings.Contains(stderr, "error: cannot reach the airlock server at "+url) {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "airlock"`},
		{[]string{"aply"}, `did you mean "apply"?`},
		{[]string{}, "airlock needs a subcommand"},
		{[]string{"audit"}, "airlock audit needs a subcommand"},
		{[]string{"token", "frob"}, `unknown command "frob" for "airlock token"`},
		{[]string{"get"}, "accepts between 1 and 2 arg(s), received 0"},
		{[]string{"get", "env", "a", "b"}, "accepts between 1 and 2 arg(s), received 3"},
		{[]string{"get", "env", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"get", "env", "-o", "xml"}, `--output "xml" is not one of table, json, yaml, name`},
		{[]string{"get", "env", "-l", "a in b"}, "label selector"},
		{[]string{"get", "env", "prod", "-l", "a=b"}, "either a NAME or --selector"},
		{[]string{"delete", "env"}, "accepts 2 arg(s), received 1"},
		{[]string{"apply"}, "give the files to apply with -f"},
		{[]string{"apply", "extra", "-f", "x"}, "unknown command"},
		{[]string{"release", "create", "shop", "1.0", "--commit", "abc"}, "--artifact is required"},
		{[]string{"release", "create", "shop", "1.0", "--artifact", "sha256:zz", "--commit", "abc"}, "is not a digest"},
		{[]string{"release", "create", "shop", "1.0", "--artifact", "sha256:" + strings.Repeat("a", 64)}, "--commit is required"},
		{[]string{"token", "create", "ci"}, "at least one --role"},
		{[]string{"token", "create", "ci", "--role", "ci", "--expires", "soon"}, `--expires: "soon" is neither a duration`},
		{[]string{"audit", "list", "--since", "yesterday"}, "--since:"},
		{[]string{"audit", "list", "--limit", "x"}, "invalid argument"},
		{[]string{"audit", "export"}, "-o FILE"},
		{[]string{"audit", "verify", "--file", "x.jsonl"}, "--file needs --public-key"},
		{[]string{"audit", "verify", "--public-key", "k.pem"}, "--public-key is used with --file"},
		{[]string{"server"}, "--data DIR is required"},
		{[]string{"server", "--data", "d", "--log-level", "loud"}, "--log-level"},
		{[]string{"version", "x"}, "unknown command"},
		{[]string{"--server", "127.0.0.1:8640", "whoami"}, "use http://HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			f, url := newFake(t, map[string]route{})
			code, _, stderr := runCLI(t, url, "", tt.args...)
			if code != ExitUsage {
				t.Errorf("exit code = %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if !strings.Contains(stderr, "--help' for usage.") {
				t.Errorf("stderr = %q, want a pointer to --help", stderr)
			}
			if f.count() != 0 {
				t.Errorf("a usage error reached the server: %+v", f.last())
			}
		})
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "http://127.0.0.1:1", "", "get", "--help")
	if code != 0 || !strings.Contains(stdout, "airlock get KIND [NAME]") {
		t.Errorf("code %d, stdout %q", code, stdout)
	}
}

const (
	envDev  = `{"apiVersion":"airlock.dev/v1","kind":"Environment","metadata":{"name":"dev","revision":2,"createdAt":"2026-11-27T14:00:00Z"},"spec":{"tier":"development","isolation":{"level":"namespace","network":"dev","credentials":"dev"},"data":"synthetic"}}`
	envProd = `{"apiVersion":"airlock.dev/v1","kind":"Environment","metadata":{"name":"prod","labels":{"team":"payments"},"revision":3,"createdAt":"2026-11-25T15:00:00Z"},"spec":{"tier":"production","isolation":{"level":"namespace","network":"prod","credentials":"prod","waiver":{"reason":"one cluster until Q3"}},"data":"production"},"status":{"violations":[{"rule":"production-isolation","message":"weak","waived":true}]}}`
	relShop = `{"apiVersion":"airlock.dev/v1","kind":"Release","metadata":{"name":"shop-1.4.0","labels":{"app":"shop"},"revision":9,"createdAt":"2026-11-27T14:59:30Z"},"spec":{"app":"shop","version":"1.4.0","artifact":{"digest":"sha256:3f2a9c41d0b7e8f6a5c4b3a29180716253443526170819a0b1c2d3e4f5a6b7c8","name":"shop.tar.gz","size":12},"commit":"9f2c1e7d8a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d","creator":"ci-bot"}}`
	tokCI   = `{"apiVersion":"airlock.dev/v1","kind":"Token","metadata":{"name":"ci","revision":4,"createdAt":"2026-11-27T12:00:00Z"},"spec":{"roles":["ci","viewer"],"environments":["dev"],"expiresAt":"2026-12-07T15:00:00Z"}}`
	tokOld  = `{"apiVersion":"airlock.dev/v1","kind":"Token","metadata":{"name":"old","revision":5,"createdAt":"2025-11-27T12:00:00Z"},"spec":{"roles":["admin"]},"status":{"revokedAt":"2026-01-01T00:00:00Z"}}`
)

func list(items ...string) route {
	return route{200, `{"apiVersion":"airlock.dev/v1","kind":"List","items":[` + strings.Join(items, ",") + `],"revision":12}`}
}

func TestOutputFormats(t *testing.T) {
	t.Parallel()
	routes := map[string]route{
		"GET /api/v1/environments": list(envDev, envProd),
		"GET /api/v1/env/prod":     {200, envProd},
		"GET /api/v1/releases":     list(relShop),
		"GET /api/v1/tokens":       list(tokCI, tokOld),
		"GET /api/v1/pipelines":    list(),
		"GET /api/v1/applications": list(`{"apiVersion":"airlock.dev/v1","kind":"Application","metadata":{"name":"shop","createdAt":"2026-11-27T14:58:00Z"},"spec":{}}`),
		"GET /api/v1/whoami":       {200, `{"name":"ci","roles":["ci","viewer"],"grants":[{"roles":["ci"],"environments":["dev","test"],"from":"token"},{"roles":["viewer"],"from":"RoleBinding/ro"}]}`},
	}
	tests := []struct {
		args       []string
		wantStdout string
		wantStderr string
	}{
		{
			args: []string{"get", "environments"},
			wantStdout: "" +
				"NAME   TIER          ISOLATION            DATA         VIOLATIONS                      AGE\n" +
				"dev    development   namespace            synthetic    <none>                          60m\n" +
				"prod   production    namespace (waiver)   production   production-isolation (waived)   2d\n",
		},
		{
			args: []string{"get", "releases"},
			wantStdout: "" +
				"NAME         APP    VERSION   DIGEST                COMMIT         CREATOR   AGE\n" +
				"shop-1.4.0   shop   1.4.0     sha256:3f2a9c41d0b7   9f2c1e7d8a6b   ci-bot    30s\n",
		},
		{
			args: []string{"token", "list"},
			wantStdout: "" +
				"NAME   ROLES       ENVIRONMENTS   EXPIRES   STATUS    AGE\n" +
				"ci     ci,viewer   dev            in 10d    active    3h\n" +
				"old    admin       *              never     revoked   365d\n",
		},
		{
			args:       []string{"get", "applications"},
			wantStdout: "NAME   AGE\nshop   2m\n",
		},
		{
			args:       []string{"get", "pipelines"},
			wantStderr: "No resources found.\n",
		},
		{
			args:       []string{"get", "pipelines", "-o", "json"},
			wantStdout: "{\n  \"apiVersion\": \"airlock.dev/v1\",\n  \"kind\": \"List\",\n  \"items\": []\n}\n",
		},
		{
			args:       []string{"get", "environments", "-o", "name"},
			wantStdout: "environment/dev\nenvironment/prod\n",
		},
		{
			args:       []string{"get", "releases", "-o", "yaml"},
			wantStdout: "apiVersion: airlock.dev/v1\nitems:\n- apiVersion: airlock.dev/v1\n  kind: Release\n  metadata:\n    createdAt: \"2026-11-27T14:59:30Z\"\n    labels:\n      app: shop\n    name: shop-1.4.0\n    revision: 9\n  spec:\n    app: shop\n    artifact:\n      digest: sha256:3f2a9c41d0b7e8f6a5c4b3a29180716253443526170819a0b1c2d3e4f5a6b7c8\n      name: shop.tar.gz\n      size: 12\n    commit: 9f2c1e7d8a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d\n    creator: ci-bot\n    version: 1.4.0\nkind: List\n",
		},
		{
			args:       []string{"get", "env", "prod", "-o", "yaml"},
			wantStdout: "apiVersion: airlock.dev/v1\nkind: Environment\nmetadata:\n  createdAt: \"2026-11-25T15:00:00Z\"\n  labels:\n    team: payments\n  name: prod\n  revision: 3\nspec:\n  data: production\n  isolation:\n    credentials: prod\n    level: namespace\n    network: prod\n    waiver:\n      reason: one cluster until Q3\n  tier: production\nstatus:\n  violations:\n  - message: weak\n    rule: production-isolation\n    waived: true\n",
		},
		{
			args:       []string{"whoami"},
			wantStdout: "NAME   ROLES    ENVIRONMENTS   FROM\nci     ci       dev,test       token\nci     viewer   *              RoleBinding/ro\n",
		},
		{
			args:       []string{"whoami", "-o", "json"},
			wantStdout: "{\n  \"name\": \"ci\",\n  \"roles\": [\n    \"ci\",\n    \"viewer\"\n  ],\n  \"grants\": [\n    {\n      \"roles\": [\n        \"ci\"\n      ],\n      \"environments\": [\n        \"dev\",\n        \"test\"\n      ],\n      \"from\": \"token\"\n    },\n    {\n      \"roles\": [\n        \"viewer\"\n      ],\n      \"from\": \"RoleBinding/ro\"\n    }\n  ]\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			_, url := newFake(t, routes)
			code, stdout, stderr := runCLI(t, url, "", tt.args...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.wantStdout)
			}
			if stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestGetJSONSingleObjectAndList(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, map[string]route{
		"GET /api/v1/env/prod": {200, envProd},
		"GET /api/v1/releases": list(relShop),
	})
	_, stdout, _ := runCLI(t, url, "", "get", "env", "prod", "-o", "json")
	var obj map[string]any
	if err := json.Unmarshal([]byte(stdout), &obj); err != nil || obj["kind"] != "Environment" {
		t.Errorf("get NAME -o json = %s (%v)", stdout, err)
	}
	_, stdout, _ = runCLI(t, url, "", "get", "releases", "-l", "app=shop", "-o", "json")
	if got := f.last().Query; got != "selector=app%3Dshop" {
		t.Errorf("query = %q", got)
	}
	var l struct {
		APIVersion, Kind string
		Items            []map[string]any
	}
	if err := json.Unmarshal([]byte(stdout), &l); err != nil || l.Kind != "List" || l.APIVersion != "airlock.dev/v1" || len(l.Items) != 1 {
		t.Errorf("get -o json = %s (%v)", stdout, err)
	}
	if f.last().Auth != "Bearer alk_test" {
		t.Errorf("Authorization = %q", f.last().Auth)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestApplyDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"b.yaml":     "kind: Pipeline\nmetadata: {name: p}\n",
		"a.yml":      "kind: Environment\nmetadata: {name: dev}\n---\nkind: Environment\nmetadata: {name: prod}", // no final newline
		"c.json":     `{"kind":"Application","metadata":{"name":"shop"}}` + "\n",
		"notes.txt":  "not a manifest",
		"sub/d.yaml": "kind: Environment\nmetadata: {name: nested}\n",
	})
	f, url := newFake(t, map[string]route{
		"POST /api/v1/apply": {200, `{"results":[{"kind":"Environment","name":"dev","action":"created","revision":1},{"kind":"Environment","name":"prod","action":"unchanged","revision":1},{"kind":"Pipeline","name":"p","action":"configured","revision":2},{"kind":"Application","name":"shop","action":"created","revision":3}]}`},
	})
	code, stdout, stderr := runCLI(t, url, "", "apply", "-f", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "environment/dev created\nenvironment/prod unchanged\npipeline/p configured\napplication/shop created\n"
	if stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	req := f.last()
	wantBody := "kind: Environment\nmetadata: {name: dev}\n---\nkind: Environment\nmetadata: {name: prod}\n" +
		"---\nkind: Pipeline\nmetadata: {name: p}\n" +
		"---\n" + `{"kind":"Application","metadata":{"name":"shop"}}` + "\n"
	if req.Body != wantBody {
		t.Errorf("body:\n%s\nwant:\n%s", req.Body, wantBody)
	}
	wantSource := strings.Join([]string{filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "c.json")}, ",")
	if req.Source != wantSource || req.ContentType != "application/yaml" || req.Query != "" {
		t.Errorf("source %q, content type %q, query %q", req.Source, req.ContentType, req.Query)
	}
}

func TestApplyAttributesErrorsToFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml": "kind: Environment\nmetadata: {name: dev}\nspec: {tier: nope}\n",  // lines 1-3, separator on 4
		"b.yaml": "kind: Environment\nmetadata: {name: prod}\nspec: {tier: nope}\n", // lines 5-7
	})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	joined := a + "," + b
	_, url := newFake(t, map[string]route{
		"POST /api/v1/apply": problem(400, "2 problems in "+joined,
			joined+":3: Environment/dev: spec.tier: unknown tier \"nope\"",
			joined+":7: Environment/prod: spec.tier: unknown tier \"nope\"",
			joined+": more than 1000 documents"),
	})
	code, _, stderr := runCLI(t, url, "", "apply", "-f", a, "-f", b)
	if code != 1 {
		t.Errorf("exit code %d", code)
	}
	want := "error: 2 problems in " + joined + "\n" +
		a + ":3: Environment/dev: spec.tier: unknown tier \"nope\"\n" +
		b + ":3: Environment/prod: spec.tier: unknown tier \"nope\"\n" +
		joined + ": more than 1000 documents\n"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
}

func TestApplySingleFileAndStdin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"env.json": `{"kind":"Environment"}`})
	f, url := newFake(t, map[string]route{
		"POST /api/v1/apply": {200, `{"results":[{"kind":"Environment","name":"dev","action":"created","revision":1}]}`},
	})
	p := filepath.Join(dir, "env.json")
	code, stdout, _ := runCLI(t, url, "", "apply", "-f", p, "--dry-run")
	req := f.last()
	if code != 0 || stdout != "environment/dev created (dry run)\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if req.Body != `{"kind":"Environment"}` || req.Source != p || req.ContentType != "application/json" || req.Query != "dryRun=true" {
		t.Errorf("request %+v", req)
	}
	code, _, _ = runCLI(t, url, "kind: Environment\n", "apply", "-f", "-")
	req = f.last()
	if code != 0 || req.Body != "kind: Environment\n" || req.Source != "stdin" || req.ContentType != "application/yaml" {
		t.Errorf("exit %d, request %+v", code, req)
	}
}

func TestApplyInputErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"empty/readme.md": "x", "big.yaml": strings.Repeat("#", 4<<20+1)})
	f, url := newFake(t, map[string]route{})
	for _, tt := range []struct{ arg, want string }{
		{filepath.Join(dir, "missing.yaml"), "missing.yaml: no such file or directory"},
		{filepath.Join(dir, "empty"), "holds no *.yaml, *.yml or *.json file"},
		{filepath.Join(dir, "big.yaml"), "the input is over 4194304 bytes"},
	} {
		code, _, stderr := runCLI(t, url, "", "apply", "-f", tt.arg)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("apply -f %s: exit %d, stderr %q, want %q", tt.arg, code, stderr, tt.want)
		}
	}
	if f.count() != 0 {
		t.Errorf("bad input reached the server")
	}
}

func TestReleaseCreateHashesTheArtifact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	content := strings.Repeat("airlock artifact\n", 100000) // 1.7 MB, more than one read
	writeFiles(t, dir, map[string]string{"shop.tar.gz": content})
	sum := sha256.Sum256([]byte(content))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	f, url := newFake(t, map[string]route{"POST /api/v1/releases": {201, relShop}, "PUT /api/v1/releases/shop-1.4.0/artifact": {200, `{"stored":"true"}`}})

	code, stdout, stderr := runCLI(t, url, "", "release", "create", "shop", "1.4.0", "--artifact", filepath.Join(dir, "shop.tar.gz"), "--commit", "9f2c1e7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var body struct {
		App, Version, Commit string
		Artifact             struct {
			Digest, Name string
			Size         int64
		}
	}
	reqs := f.all()
	if len(reqs) != 2 || reqs[1].Method != "PUT" || reqs[1].Body != content {
		t.Fatalf("the artifact was not uploaded whole after the release: %d requests", len(reqs))
	}
	if err := json.Unmarshal([]byte(reqs[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	if body.App != "shop" || body.Version != "1.4.0" || body.Commit != "9f2c1e7" ||
		body.Artifact.Digest != digest || body.Artifact.Name != "shop.tar.gz" || body.Artifact.Size != int64(len(content)) {
		t.Errorf("request body %+v, want digest %s size %d", body, digest, len(content))
	}
	if stdout != "release/shop-1.4.0 created ("+digest+")\n" {
		t.Errorf("stdout = %q", stdout)
	}

	given := "sha256:" + strings.Repeat("ab", 32)
	code, stdout, _ = runCLI(t, url, "", "release", "create", "shop", "1.4.0", "--artifact", given, "--commit", "9f2c1e7", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"name": "shop-1.4.0"`) {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if got := f.last().Body; !strings.Contains(got, `"artifact":{"digest":"`+given+`"}`) {
		t.Errorf("body %s", got)
	}

	code, _, stderr = runCLI(t, url, "", "release", "create", "shop", "1.4.0", "--artifact", filepath.Join(dir, "nope"), "--commit", "c")
	if code != 1 || !strings.Contains(stderr, "error: artifact "+filepath.Join(dir, "nope")+": no such file or directory") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	answer := `{"name":"ci","token":"alk_s3cret","roles":["ci"],"environments":["dev","test"],"expiresAt":"2027-02-25T15:00:00Z"}`
	f, url := newFake(t, map[string]route{"POST /api/v1/tokens": {201, answer}})
	code, stdout, stderr := runCLI(t, url, "", "token", "create", "ci", "--role", "ci", "--env", "dev", "--env", "test", "--expires", "90d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "alk_s3cret\n" {
		t.Errorf("stdout = %q, want the secret alone", stdout)
	}
	if !strings.Contains(stderr, "shown only once") || !strings.Contains(stderr, `token "ci" created with roles ci for environments dev, test, expires 2027-02-25T15:00:00Z`) {
		t.Errorf("stderr = %q", stderr)
	}
	if got, want := f.last().Body, `{"name":"ci","roles":["ci"],"environments":["dev","test"],"expiresAt":"2027-02-25T15:00:00Z"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	code, stdout, _ = runCLI(t, url, "", "token", "create", "ci", "--role", "ci,viewer", "-o", "json")
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got["token"] != "alk_s3cret" {
		t.Errorf("exit %d, -o json = %q", code, stdout)
	}
	if body := f.last().Body; body != `{"name":"ci","roles":["ci","viewer"]}` {
		t.Errorf("body = %s", body)
	}
}

func TestTokenRevokeAndDelete(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, map[string]route{
		"DELETE /api/v1/tokens/ci": {200, tokOld},
		"DELETE /api/v1/env/dev":   {200, `{"deleted":"Environment/dev"}`},
	})
	code, stdout, _ := runCLI(t, url, "", "token", "revoke", "ci", "--reason", "leaked in a log")
	if code != 0 || stdout != "token/ci revoked\n" || f.last().Query != "reason=leaked+in+a+log" {
		t.Errorf("exit %d, stdout %q, query %q", code, stdout, f.last().Query)
	}
	code, stdout, _ = runCLI(t, url, "", "delete", "env", "dev", "--reason", "gone", "--revision", "4")
	if code != 0 || stdout != "environment/dev deleted\n" || f.last().Query != "reason=gone&revision=4" {
		t.Errorf("exit %d, stdout %q, query %q", code, stdout, f.last().Query)
	}
}

func TestAuditList(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, map[string]route{
		"GET /api/v1/audit/entries": {200, `{"items":[{"seq":7,"time":"2026-11-27T14:00:00Z","actor":"admin","action":"create","kind":"Environment","name":"dev","revision":7,"reason":"setup","stateHash":"s","prevHash":"p","hash":"h"}]}`},
	})
	code, stdout, _ := runCLI(t, url, "", "audit", "list", "--actor", "admin", "--since", "24h", "--limit", "5")
	want := "SEQ   TIME                   ACTOR   ACTION   OBJECT            REVISION   REASON\n" +
		"7     2026-11-27T14:00:00Z   admin   create   Environment/dev   7          setup\n"
	if code != 0 || stdout != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, stdout, want)
	}
	if q := f.last().Query; q != "actor=admin&limit=5&since=2026-11-26T15%3A00%3A00Z" {
		t.Errorf("query = %q", q)
	}
	runCLI(t, url, "", "audit", "list", "--since", "2026-01-02T03:04:05Z")
	if q := f.last().Query; q != "since=2026-01-02T03%3A04%3A05Z" {
		t.Errorf("query = %q", q)
	}
}

func TestAuditVerifyOnline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		answer              string
		wantCode            int
		wantStdout, wantErr string
	}{
		{`{"ok":true,"summary":"ok: 17 entries, chain intact, last checkpoint signed","report":{"entries":17}}`, 0,
			"ok: 17 entries, chain intact, last checkpoint signed\n", ""},
		{`{"ok":false,"summary":"broken at entry 5: its content does not match its hash: the entry was modified","report":{"entries":4,"broken":{"seq":5,"reason":"x"}}}`, 1,
			"", "error: audit log broken at entry 5: its content does not match its hash: the entry was modified\n"},
	}
	for _, tt := range tests {
		_, url := newFake(t, map[string]route{"POST /api/v1/audit/verify": {200, tt.answer}})
		code, stdout, stderr := runCLI(t, url, "", "audit", "verify")
		if code != tt.wantCode || stdout != tt.wantStdout || stderr != tt.wantErr {
			t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantErr)
		}
	}
}

// writeExport writes a valid signed export of n entries and the public key
// to dir, and returns their paths.
func writeExport(t *testing.T, dir string, n int) (exportPath, keyPath string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.NewSigner(key)
	prev := audit.GenesisHash
	var entries []*audit.Entry
	for i := 1; i <= n; i++ {
		e := &audit.Entry{Seq: int64(i), Time: testNow.Add(time.Duration(i) * time.Second), Actor: "admin", Action: "create", Kind: "Environment", Name: fmt.Sprintf("e%d", i), Revision: int64(i), StateHash: audit.GenesisHash}
		e.Seal(prev)
		prev = e.Hash
		entries = append(entries, e)
	}
	cp := signer.Sign(int64(n), prev, testNow)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.Encode(audit.Line{Header: &audit.Header{Format: audit.ExportFormat, KeyID: cp.KeyID, ExportedAt: testNow}})
	enc.Encode(audit.Line{Checkpoint: &cp})
	for _, e := range entries {
		enc.Encode(audit.Line{Entry: e})
	}
	exportPath, keyPath = filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(exportPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, audit.EncodePublicKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return exportPath, keyPath
}

func TestAuditVerifyOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	export, key := writeExport(t, dir, 3)
	// No server: the address is unreachable, and verifying must not need it.
	code, stdout, stderr := runCLI(t, "http://127.0.0.1:1", "", "audit", "verify", "--file", export, "--public-key", key)
	if code != 0 || stdout != "ok: 3 entries, chain intact, last checkpoint signed\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	data, _ := os.ReadFile(export)
	tampered := bytes.Replace(data, []byte(`"name":"e2"`), []byte(`"name":"eX"`), 1)
	if bytes.Equal(tampered, data) {
		t.Fatal("tampering did not change the export")
	}
	os.WriteFile(export, tampered, 0o600)
	code, stdout, stderr = runCLI(t, "http://127.0.0.1:1", "", "audit", "verify", "--file", export, "--public-key", key)
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "error: audit log broken at entry 2:") {
		t.Errorf("tampered: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, _, stderr = runCLI(t, "http://127.0.0.1:1", "", "audit", "verify", "--file", export, "--public-key", export)
	if code != 1 || !strings.Contains(stderr, "PUBLIC KEY") {
		t.Errorf("bad key: exit %d, stderr %q", code, stderr)
	}
}

func TestAuditExportWritesFile0600(t *testing.T) {
	t.Parallel()
	const jsonl = `{"header":{"format":"airlock-audit-export/v1"}}` + "\n"
	_, url := newFake(t, map[string]route{"GET /api/v1/audit/export": {200, jsonl}})
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	code, stdout, stderr := runCLI(t, url, "", "audit", "export", "-o", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != fmt.Sprintf("audit log exported to %s (%d bytes)\n", path, len(jsonl)) {
		t.Errorf("stdout %q", stdout)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != jsonl {
		t.Errorf("file = %q, %v", data, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestAuditExportFailureLeavesNoFile(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, map[string]route{"GET /api/v1/audit/export": problem(403, "the role viewer may not export the audit log")})
	dir := t.TempDir()
	code, _, stderr := runCLI(t, url, "", "audit", "export", "-o", filepath.Join(dir, "audit.jsonl"))
	if code != 3 || !strings.Contains(stderr, "may not export") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func TestAuditCheckpointAndPublicKey(t *testing.T) {
	t.Parallel()
	pem := string(audit.EncodePublicKey(make(ed25519.PublicKey, ed25519.PublicKeySize)))
	_, url := newFake(t, map[string]route{
		"POST /api/v1/audit/checkpoints": {201, `{"size":17,"head":"sha256:abc","time":"2026-11-27T15:00:00Z","keyId":"0011223344556677","signature":"AAE="}`},
		"GET /api/v1/audit/public-key":   {200, pem},
	})
	code, stdout, _ := runCLI(t, url, "", "audit", "checkpoint")
	if code != 0 || stdout != "checkpoint signed: 17 entries, head sha256:abc, key 0011223344556677\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, url, "", "audit", "public-key")
	if code != 0 || stdout != pem {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func TestServerCommandPassesConfig(t *testing.T) {
	t.Parallel()
	var got server.Config
	var errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errOut, now: time.Now,
		getenv: func(string) string { return "" },
		serve: func(ctx context.Context, cfg server.Config) error {
			got = cfg
			return nil
		}}
	code := a.run(context.Background(), []string{"server", "--data", "/tmp/d", "--listen", ":9000", "--database", "postgres://x/y", "--signing-key", "/k.pem", "--checkpoint-every", "5m"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got.DataDir != "/tmp/d" || got.Listen != ":9000" || got.DatabaseURL != "postgres://x/y" || got.SigningKey != "/k.pem" || got.CheckpointEvery != 5*time.Minute || got.Logger == nil {
		t.Errorf("config = %+v", got)
	}
}

func TestServerStoppedBySignalExitsZero(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, now: time.Now,
		getenv: func(string) string { return "" },
		serve: func(ctx context.Context, cfg server.Config) error {
			cancel() // as SIGTERM would
			<-ctx.Done()
			return ctx.Err()
		}}
	if code := a.run(ctx, []string{"server", "--data", t.TempDir()}); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "1d12h": 36 * time.Hour, "30m": 30 * time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "xd", "-1d", "1d1", "soon"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) accepted", in)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "http://127.0.0.1:1", "", "version")
	if code != 0 || !strings.HasPrefix(stdout, "airlock "+server.Version+" (go") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}
