package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/breakglass"
	"github.com/airlock-dev/airlock/internal/store"
)

// syncBuffer is a log destination the handlers write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newBreakGlassEnv is a server with break-glass wired, logging at debug
// level into log, with tokens for an sre scoped to prod, an sre scoped to
// staging, a tech-lead and a deployer.
func newBreakGlassEnv(t *testing.T) (*env, *syncBuffer, map[string]string) {
	t.Helper()
	ctx := context.Background()
	log := &syncBuffer{}
	e := newEnvWith(t, func(dir string, d *api.Deps) {
		sealer, err := seal.LoadOrCreateKey(filepath.Join(dir, "seal.key"))
		if err != nil {
			t.Fatal(err)
		}
		d.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d.BreakGlass = breakglass.New(d.Store, sealer, nil)
	})
	tokens := auth.NewTokens(e.store)
	toks := map[string]string{}
	for name, req := range map[string]auth.CreateRequest{
		"sre-prod":    {Roles: []auth.Role{auth.SRE}, Environments: []string{"prod"}},
		"sre-staging": {Roles: []auth.Role{auth.SRE}, Environments: []string{"staging"}},
		"lead":        {Roles: []auth.Role{auth.TechLead}},
		"deployer":    {Roles: []auth.Role{auth.Deployer}},
		"auditor":     {Roles: []auth.Role{auth.Auditor}},
	} {
		req.Name = name
		issued, err := tokens.Create(ctx, store.Actor{Name: "test"}, req)
		if err != nil {
			t.Fatal(err)
		}
		toks[name] = issued.Token
	}
	return e, log, toks
}

const breakGlassYAML = `apiVersion: airlock.dev/v1
kind: BreakGlass
metadata: {name: prod-root}
spec: {environment: prod, description: root of the prod database, validFor: 1h}
---
apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: pager}
spec: {type: webhook, url: "https://hooks.example.com/pager", events: [rollback]}
`

func TestBreakGlassOverHTTP(t *testing.T) {
	e, log, toks := newBreakGlassEnv(t)
	if code, body := e.do("POST", "/api/v1/apply", e.admin, "application/yaml", breakGlassYAML); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	const secret = "Pr0d-R00t-never-logged"
	steps := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"store as a deployer", "POST", "/api/v1/breakglass/prod-root/credential", toks["deployer"], secret, 403},
		{"store as an sre", "POST", "/api/v1/breakglass/prod-root/credential", toks["sre-prod"], secret, 403},
		{"store an unknown one", "POST", "/api/v1/breakglass/nope/credential", e.admin, secret, 404},
		{"store", "POST", "/api/v1/breakglass/prod-root/credential", e.admin, secret, 200},
		{"open by an sre of staging", "POST", "/api/v1/breakglass/prod-root/open", toks["sre-staging"], `{"reason":"orders-db is down and nobody answers"}`, 403},
		{"open by a deployer", "POST", "/api/v1/breakglass/prod-root/open", toks["deployer"], `{"reason":"orders-db is down and nobody answers"}`, 403},
		{"open with a short reason", "POST", "/api/v1/breakglass/prod-root/open", toks["sre-prod"], `{"reason":"down"}`, 400},
		{"drill", "POST", "/api/v1/breakglass/prod-root/drill", toks["lead"], ``, 200},
		{"open", "POST", "/api/v1/breakglass/prod-root/open", toks["sre-prod"], `{"reason":"orders-db is down and nobody answers"}`, 200},
		{"open again", "POST", "/api/v1/breakglass/prod-root/open", toks["lead"], `{"reason":"orders-db is still down, again"}`, 409},
	}
	bodies := map[string]string{}
	for _, s := range steps {
		code, body := e.do(s.method, s.path, s.token, "application/json", s.body)
		if code != s.want {
			t.Fatalf("%s: %d %s, want %d", s.name, code, body, s.want)
		}
		bodies[s.name] = string(body)
	}
	if strings.Contains(bodies["store"], secret) || !strings.Contains(bodies["store"], `"fingerprint": "sha256:`) {
		t.Errorf("store answered %s", bodies["store"])
	}
	var opened breakglass.Opened
	if err := json.Unmarshal([]byte(bodies["open"]), &opened); err != nil {
		t.Fatal(err)
	}
	if opened.Credential != secret || opened.Incident == "" || opened.Review == "" || opened.ValidUntil.IsZero() {
		t.Errorf("open answered %+v", opened)
	}
	var drill breakglass.DrillResult
	if err := json.Unmarshal([]byte(bodies["drill"]), &drill); err != nil || !drill.OK {
		t.Errorf("drill answered %s (%v)", bodies["drill"], err)
	}

	code, body := e.do("GET", "/api/v1/breakglass", toks["auditor"], "", "")
	var list api.BreakGlassList
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		t.Fatalf("list: %d %s", code, body)
	}
	if len(list.Items) != 1 || len(list.Summaries) != 1 || list.Summaries[0].Credential != breakglass.CredentialOpened || list.Summaries[0].DrillOverdue {
		t.Errorf("list: %s", body)
	}

	// The credential is in no audit entry, no object and no log line.
	code, body = e.do("GET", "/api/v1/audit/entries", e.admin, "", "")
	if code != 200 || !bytes.Contains(body, []byte("refused-breakglass-open")) || !bytes.Contains(body, []byte("break-glass opened: orders-db")) {
		t.Fatalf("audit: %d %s", code, body)
	}
	if bytes.Contains(body, []byte(secret)) {
		t.Error("an audit entry holds the credential")
	}
	for _, path := range []string{"/api/v1/breakglasses/prod-root", "/api/v1/incidents", "/api/v1/reviews", "/api/v1/notifications"} {
		if _, body := e.do("GET", path, e.admin, "", ""); bytes.Contains(body, []byte(secret)) {
			t.Errorf("GET %s shows the credential", path)
		}
	}
	if !strings.Contains(log.String(), "break-glass opened") {
		t.Errorf("the open was not logged: %s", log.String())
	}
	if strings.Contains(log.String(), secret) {
		t.Errorf("the server log holds the credential: %s", log.String())
	}
}
