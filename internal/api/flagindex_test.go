package api_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// evalStaging evaluates beta-banner over OFREP with key and returns the
// status code and body.
func evalStaging(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/ofrep/v1/evaluate/flags/beta-banner", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOFREPCacheSeesOtherWriters: evaluations are served from memory, and
// a flag changed by another process on the same database (a second store
// handle on the SQLite file) is served within a second.
func TestOFREPCacheSeesOtherWriters(t *testing.T) {
	e := newEnv(t)
	e.applyApproved(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: "banner", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := evalStaging(t, e.srv.URL, issued.Token); code != 200 || !strings.Contains(body, `"variant": "plain"`) {
		t.Fatalf("before: %d %s", code, body)
	}

	// Another replica: its own store handle and API on the same file.
	dir := t.TempDir()
	other, err := sqlite.Open(context.Background(), e.dbPath, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	d := server.NewDeps(other, audit.NewSigner(key), nil, nil)
	doc := strings.Replace(strings.Replace(flagsYAML, "ENABLED", "true", 1), `defaultVariant: "plain"`, `defaultVariant: "beta"`, 1)
	objs, err := d.Scheme.Decode("other.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Catalog.Apply(context.Background(), store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		code, body := evalStaging(t, e.srv.URL, issued.Token)
		if code == 200 && strings.Contains(body, `"variant": "beta"`) {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the other replica's change is not served after %s: %d %s", time.Since(start), code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("served the other replica's change after %s", time.Since(start).Round(time.Millisecond))
}

// TestOFREPCacheRevocation: a revoked evaluation key is refused on its
// next request, although its principal was cached.
func TestOFREPCacheRevocation(t *testing.T) {
	e := newEnv(t)
	e.applyApproved(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	code, body := e.do("POST", "/api/v1/tokens", e.admin, "application/json", `{"name":"banner","roles":["evaluator"],"environments":["staging"]}`)
	if code != 201 {
		t.Fatalf("token: %d %s", code, body)
	}
	key := between(string(body), `"token": "`, `"`)
	for range 3 {
		if code, body := evalStaging(t, e.srv.URL, key); code != 200 {
			t.Fatalf("before revoking: %d %s", code, body)
		}
	}
	if code, body := e.do("DELETE", "/api/v1/tokens/banner", e.admin, "", ""); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, body := evalStaging(t, e.srv.URL, key); code != 401 {
		t.Fatalf("after revoking: %d %s, want 401", code, body)
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// TestOFREPTagIgnoresStatusWrites: a write of a flag's status alone (the
// day it was last evaluated) keeps the bulk ETag, so clients' caches stay
// valid.
func TestOFREPTagIgnoresStatusWrites(t *testing.T) {
	e := newEnv(t)
	e.applyApproved(strings.Replace(flagsYAML, "ENABLED", "true", 1))
	issued, err := auth.NewTokens(e.store).Create(context.Background(), store.Actor{Name: "admin"}, auth.CreateRequest{Name: "banner", Roles: []auth.Role{auth.Evaluator}, Environments: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	etag := func() string {
		req, _ := http.NewRequest("POST", e.srv.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u1"}}`))
		req.Header.Set("Authorization", "Bearer "+issued.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	before := etag()
	ctx := context.Background()
	if err := e.store.Write(ctx, store.Actor{Name: "system:flag-usage"}, func(tx store.Tx) error {
		o, err := tx.Get(ctx, "Flag", "shop.new-checkout.staging")
		if err != nil {
			return err
		}
		o.Status = []byte(`{"lastEvaluated":"2026-11-27T00:00:00Z"}`)
		o.Metadata.Revision = 0
		_, err = tx.Update(ctx, o)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A token write moves the cache on at once (the watch does too, a
	// moment later): the next evaluation compiles the flags again.
	if code, body := e.do("POST", "/api/v1/tokens", e.admin, "application/json", `{"name":"other","roles":["auditor"]}`); code != 201 {
		t.Fatalf("token: %d %s", code, body)
	}
	if after := etag(); before == "" || after != before {
		t.Fatalf("ETag %q after a status write, %q before", after, before)
	}
}
