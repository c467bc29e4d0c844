package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

// recorded is what the fake server saw of one request.
type recorded struct {
	Method, Path, RawPath, Query, Auth, ContentType, Source string
	Body                                                    string
}

// fake answers every request with status, contentType and body, and
// records the request.
func fake(t *testing.T, status int, contentType, body string) (*client.Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*rec = recorded{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"),
			Source: r.Header.Get("X-Airlock-Source"), Body: string(b),
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "alk_secret")
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func TestRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: "Environment", Metadata: resource.Metadata{Name: "dev", Revision: 4}, Spec: json.RawMessage(`{"tier":"development"}`)}
	objJSON := `{"apiVersion":"airlock.dev/v1","kind":"Environment","metadata":{"name":"dev","revision":5},"spec":{"tier":"development"}}`
	tests := []struct {
		name     string
		status   int
		respond  string
		call     func(c *client.Client) (any, error)
		want     recorded // Auth is always checked; empty fields are not
		wantJSON string   // the call's result, as JSON
	}{
		{
			name: "list with selector", status: 200,
			respond:  `{"apiVersion":"airlock.dev/v1","kind":"List","items":[` + objJSON + `],"revision":9}`,
			call:     func(c *client.Client) (any, error) { return c.List(ctx, "releases", "app=shop,tier!=x") },
			want:     recorded{Method: "GET", Path: "/api/v1/releases", Query: "selector=app%3Dshop%2Ctier%21%3Dx"},
			wantJSON: `{"apiVersion":"airlock.dev/v1","kind":"List","items":[` + objJSON + `],"revision":9}`,
		},
		{
			name: "get escapes the name", status: 200, respond: objJSON,
			call:     func(c *client.Client) (any, error) { return c.Get(ctx, "env", "a b/c") },
			want:     recorded{Method: "GET", RawPath: "/api/v1/env/a%20b%2Fc"},
			wantJSON: objJSON,
		},
		{
			name: "create posts the object", status: 201, respond: objJSON,
			call: func(c *client.Client) (any, error) { return c.Create(ctx, "environments", obj) },
			want: recorded{Method: "POST", Path: "/api/v1/environments", ContentType: "application/json",
				Body: `{"apiVersion":"airlock.dev/v1","kind":"Environment","metadata":{"name":"dev","revision":4},"spec":{"tier":"development"}}`},
			wantJSON: objJSON,
		},
		{
			name: "update puts by name", status: 200, respond: objJSON,
			call:     func(c *client.Client) (any, error) { return c.Update(ctx, "environments", obj) },
			want:     recorded{Method: "PUT", Path: "/api/v1/environments/dev", ContentType: "application/json"},
			wantJSON: objJSON,
		},
		{
			name: "delete with revision and reason", status: 200, respond: `{"deleted":"Environment/dev"}`,
			call:     func(c *client.Client) (any, error) { return c.Delete(ctx, "env", "dev", 7, "not needed") },
			want:     recorded{Method: "DELETE", Path: "/api/v1/env/dev", Query: "reason=not+needed&revision=7"},
			wantJSON: `"Environment/dev"`,
		},
		{
			name: "apply dry run", status: 200,
			respond: `{"results":[{"kind":"Environment","name":"dev","action":"created","revision":3}]}`,
			call: func(c *client.Client) (any, error) {
				return c.Apply(ctx, "a.yaml", []byte("kind: Environment\n"), client.ContentYAML, true)
			},
			want:     recorded{Method: "POST", Path: "/api/v1/apply", Query: "dryRun=true", ContentType: "application/yaml", Source: "a.yaml", Body: "kind: Environment\n"},
			wantJSON: `[{"kind":"Environment","name":"dev","action":"created","revision":3}]`,
		},
		{
			name: "create release", status: 201, respond: objJSON,
			call: func(c *client.Client) (any, error) {
				return c.CreateRelease(ctx, client.ReleaseRequest{App: "shop", Version: "1.4.0", Commit: "9f2c1e7",
					Artifact: client.Artifact{Digest: "sha256:ab", Name: "shop", Size: 12}})
			},
			want: recorded{Method: "POST", Path: "/api/v1/releases",
				Body: `{"app":"shop","version":"1.4.0","artifact":{"digest":"sha256:ab","name":"shop","size":12},"commit":"9f2c1e7"}`},
			wantJSON: objJSON,
		},
		{
			name: "create token keeps the raw answer", status: 201,
			respond: `{"name":"ci","token":"alk_x","roles":["ci"],"environments":["dev"],"extra":1}`,
			call: func(c *client.Client) (any, error) {
				tok, err := c.CreateToken(ctx, client.TokenRequest{Name: "ci", Roles: []string{"ci"}, Environments: []string{"dev"},
					ExpiresAt: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)})
				if err != nil {
					return nil, err
				}
				return string(tok.Raw) + "|" + tok.Token, nil
			},
			want: recorded{Method: "POST", Path: "/api/v1/tokens",
				Body: `{"name":"ci","roles":["ci"],"environments":["dev"],"expiresAt":"2027-01-02T03:04:05Z"}`},
			wantJSON: `"{\"name\":\"ci\",\"token\":\"alk_x\",\"roles\":[\"ci\"],\"environments\":[\"dev\"],\"extra\":1}|alk_x"`,
		},
		{
			name: "revoke token", status: 200, respond: objJSON,
			call:     func(c *client.Client) (any, error) { return c.RevokeToken(ctx, "ci", "leaked") },
			want:     recorded{Method: "DELETE", Path: "/api/v1/tokens/ci", Query: "reason=leaked"},
			wantJSON: objJSON,
		},
		{
			name: "whoami", status: 200, respond: `{"name":"ci","roles":["ci"],"grants":[{"roles":["ci"],"environments":["dev"],"from":"token"}]}`,
			call:     func(c *client.Client) (any, error) { return c.WhoAmI(ctx) },
			want:     recorded{Method: "GET", Path: "/api/v1/whoami"},
			wantJSON: `{"name":"ci","roles":["ci"],"grants":[{"roles":["ci"],"environments":["dev"],"from":"token"}]}`,
		},
		{
			name: "audit entries filter", status: 200, respond: `{"items":[{"seq":1,"time":"2026-01-01T00:00:00Z","actor":"admin","action":"create","kind":"Environment","name":"dev","revision":1,"stateHash":"s","prevHash":"p","hash":"h"}]}`,
			call: func(c *client.Client) (any, error) {
				return c.AuditEntries(ctx, client.AuditFilter{Actor: "admin", Kind: "Environment", Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), After: 3, Limit: 10})
			},
			want:     recorded{Method: "GET", Path: "/api/v1/audit/entries", Query: "actor=admin&after=3&kind=Environment&limit=10&since=2026-01-01T00%3A00%3A00Z"},
			wantJSON: `[{"seq":1,"time":"2026-01-01T00:00:00Z","actor":"admin","action":"create","kind":"Environment","name":"dev","revision":1,"stateHash":"s","prevHash":"p","hash":"h"}]`,
		},
		{
			name: "audit verify fills the summary from the report", status: 200,
			respond:  `{"ok":false,"report":{"entries":4,"head":"h","checkpoints":0,"broken":{"seq":5,"reason":"its content does not match its hash: the entry was modified"}}}`,
			call:     func(c *client.Client) (any, error) { r, err := c.AuditVerify(ctx); return r.Summary, err },
			want:     recorded{Method: "POST", Path: "/api/v1/audit/verify"},
			wantJSON: `"broken at entry 5: its content does not match its hash: the entry was modified"`,
		},
		{
			name: "sign checkpoint", status: 201, respond: `{"size":3,"head":"h","time":"2026-01-01T00:00:00Z","keyId":"k","signature":"AAE="}`,
			call:     func(c *client.Client) (any, error) { return c.SignCheckpoint(ctx) },
			want:     recorded{Method: "POST", Path: "/api/v1/audit/checkpoints"},
			wantJSON: `{"size":3,"head":"h","time":"2026-01-01T00:00:00Z","keyId":"k","signature":"AAE="}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := fake(t, tt.status, "application/json", tt.respond)
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if rec.Auth != "Bearer alk_secret" {
				t.Errorf("Authorization = %q", rec.Auth)
			}
			check := func(field, got, want string) {
				if want != "" && got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("method", rec.Method, tt.want.Method)
			check("path", rec.Path, tt.want.Path)
			check("escaped path", rec.RawPath, tt.want.RawPath)
			check("query", rec.Query, tt.want.Query)
			check("content type", rec.ContentType, tt.want.ContentType)
			check("source", rec.Source, tt.want.Source)
			check("body", rec.Body, tt.want.Body)
			b, _ := json.Marshal(got)
			if !jsonEqual(t, b, []byte(tt.wantJSON)) {
				t.Errorf("result = %s\nwant     %s", b, tt.wantJSON)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("bad json %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("bad json %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        client.APIError
		wantMsg     string
	}{
		{
			name: "problem with item errors", status: 400, contentType: "application/problem+json",
			body: `{"type":"https://airlock.dev/problems/invalid","title":"Invalid input","status":400,"detail":"2 problems in quickstart.yaml","errors":["quickstart.yaml:3: Environment/dev: spec.tier: unknown","quickstart.yaml:9: Pipeline/p: spec: missing"]}`,
			want: client.APIError{Status: 400, Type: "https://airlock.dev/problems/invalid", Title: "Invalid input", Detail: "2 problems in quickstart.yaml",
				Errors: []string{"quickstart.yaml:3: Environment/dev: spec.tier: unknown", "quickstart.yaml:9: Pipeline/p: spec: missing"}},
			wantMsg: "2 problems in quickstart.yaml\nquickstart.yaml:3: Environment/dev: spec.tier: unknown\nquickstart.yaml:9: Pipeline/p: spec: missing",
		},
		{
			name: "conflict", status: 409, contentType: "application/problem+json; charset=utf-8",
			body:    `{"title":"Conflict","status":409,"detail":"Environment \"prod\" was changed by someone else"}`,
			want:    client.APIError{Status: 409, Title: "Conflict", Detail: `Environment "prod" was changed by someone else`},
			wantMsg: `Environment "prod" was changed by someone else`,
		},
		{
			name: "title only", status: 403, contentType: "application/problem+json",
			body:    `{"title":"Forbidden","status":403}`,
			want:    client.APIError{Status: 403, Title: "Forbidden"},
			wantMsg: "Forbidden",
		},
		{
			name: "plain text body", status: 502, contentType: "text/plain",
			body:    "upstream down\n",
			want:    client.APIError{Status: 502, Title: "Bad Gateway", Detail: "server answered 502 Bad Gateway: upstream down"},
			wantMsg: "server answered 502 Bad Gateway: upstream down",
		},
		{
			name: "html body is not echoed", status: 404, contentType: "text/html",
			body:    "<html>nope</html>",
			want:    client.APIError{Status: 404, Title: "Not Found"},
			wantMsg: "Not Found",
		},
		{
			name: "empty body", status: 401, contentType: "",
			want:    client.APIError{Status: 401, Title: "Unauthorized"},
			wantMsg: "Unauthorized",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fake(t, tt.status, tt.contentType, tt.body)
			_, err := c.Get(context.Background(), "environments", "prod")
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *APIError", err, err)
			}
			gotJSON, _ := json.Marshal(ae)
			wantJSON, _ := json.Marshal(tt.want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("APIError = %s\nwant       %s", gotJSON, wantJSON)
			}
			if ae.Error() != tt.wantMsg {
				t.Errorf("Error() = %q\nwant      %q", ae.Error(), tt.wantMsg)
			}
			if !client.IsStatus(err, tt.status) {
				t.Errorf("IsStatus(err, %d) = false", tt.status)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := client.New(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WhoAmI(context.Background())
	var ae *client.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("err = %v, want a transport error", err)
	}
	if !strings.Contains(err.Error(), "cannot reach the airlock server at "+addr) {
		t.Errorf("err = %v", err)
	}
}

func TestNewRejectsBadAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:8640", "ftp://x", "http://", "://"} {
		if _, err := client.New(addr, ""); err == nil {
			t.Errorf("New(%q) accepted", addr)
		}
	}
	c, err := client.New("http://example.com/prefix/", "")
	if err != nil || c.Server() != "http://example.com/prefix" {
		t.Errorf("New with prefix = %v, %v", c, err)
	}
}

func TestNoTokenSendsNoAuthorization(t *testing.T) {
	t.Parallel()
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Values("Authorization")
		io.WriteString(w, `{"name":"x"}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, "")
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(auth) != 0 {
		t.Errorf("Authorization sent: %q", auth)
	}
}

func TestExportAndPublicKey(t *testing.T) {
	t.Parallel()
	const pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	const export = `{"header":{"format":"airlock-audit-export/v1"}}` + "\n" + `{"entry":{"seq":1}}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/audit/export":
			w.Header().Set("Content-Type", "application/jsonl")
			io.WriteString(w, export)
		case "/api/v1/audit/public-key":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, pem)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, "t")
	var buf bytes.Buffer
	n, err := c.AuditExport(context.Background(), &buf)
	if err != nil || n != int64(len(export)) || buf.String() != export {
		t.Errorf("AuditExport = %d, %v, %q", n, err, buf.String())
	}
	key, err := c.PublicKey(context.Background())
	if err != nil || string(key) != pem {
		t.Errorf("PublicKey = %q, %v", key, err)
	}
}

func TestPublicKeyRejectsGarbage(t *testing.T) {
	t.Parallel()
	c, _ := fake(t, 200, "text/plain", "not a key")
	if _, err := c.PublicKey(context.Background()); err == nil {
		t.Error("PublicKey accepted a non-PEM answer")
	}
}
