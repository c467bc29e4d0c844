package hook_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/broker/hook"
)

const testToken = "tok-9f8e7d6c5b4a"

// endpoint is a fake access system: it checks the bearer token, records
// each request, and answers with answer(action).
type endpoint struct {
	mu       sync.Mutex
	requests []map[string]any
	answer   func(w http.ResponseWriter, r *http.Request, action string)
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "bad token: "+r.Header.Get("Authorization"))
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.requests = append(e.requests, req)
	e.mu.Unlock()
	action, _ := req["action"].(string)
	e.answer(w, r, action)
}

func (e *endpoint) last() map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.requests) == 0 {
		return nil
	}
	return e.requests[len(e.requests)-1]
}

// newWebhook starts ep and returns a broker calling it with env, whose
// TOKEN is testToken unless env sets it.
func newWebhook(t *testing.T, ep http.Handler, cfg hook.WebhookConfig, env map[string]string) (*hook.Webhook, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	if cfg.URL == "" && cfg.URLEnv == "" {
		cfg.URL = srv.URL + "/access"
	}
	if cfg.TokenEnv == "" {
		cfg.TokenEnv = "TOKEN"
	}
	all := map[string]string{"TOKEN": testToken}
	maps.Copy(all, env)
	w, err := hook.NewWebhook(cfg, func(k string) string { return all[k] })
	if err != nil {
		t.Fatal(err)
	}
	return w, srv
}

func TestWebhookGrantAndRevoke(t *testing.T) {
	t.Parallel()
	ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
		switch action {
		case "grant":
			io.WriteString(w, `{"credential": {"token": "vpn-token-1"}, "handle": "vpn:acc-20261127-001"}`)
		case "revoke":
			w.WriteHeader(http.StatusNoContent)
		}
	}}
	wh, _ := newWebhook(t, ep, hook.WebhookConfig{}, nil)

	iss, err := wh.Grant(context.Background(), sampleGrant())
	if err != nil {
		t.Fatal(err)
	}
	if iss.Credential["token"] != "vpn-token-1" || len(iss.Credential) != 1 || iss.Handle != "vpn:acc-20261127-001" {
		t.Fatalf("issued %+v", iss)
	}
	got, _ := json.Marshal(ep.last())
	want := `{"action":"grant","grant":{"environment":"prod","grants":["vpn-prod","orders-ro"],"id":"acc-20261127-001","notAfter":"2026-11-27T21:00:00Z","notBefore":"2026-11-27T20:00:00Z","publicKey":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0 alice","requester":"alice@example.com","resource":"orders-vpn","role":"readonly"}}`
	if string(got) != want {
		t.Fatalf("grant request\n%s\nwant\n%s", got, want)
	}

	if err := wh.Revoke(context.Background(), sampleGrant(), iss.Handle); err != nil {
		t.Fatal(err)
	}
	if r := ep.last(); r["action"] != "revoke" || r["handle"] != "vpn:acc-20261127-001" || r["grant"].(map[string]any)["id"] != "acc-20261127-001" {
		t.Fatalf("revoke request %v", r)
	}
}

func TestWebhookRevokeOfWhatIsGoneSucceeds(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusOK, http.StatusAccepted, http.StatusNotFound, http.StatusGone} {
		ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
			http.Error(w, "no such grant", code)
		}}
		wh, _ := newWebhook(t, ep, hook.WebhookConfig{}, nil)
		if err := wh.Revoke(context.Background(), sampleGrant(), ""); err != nil {
			t.Errorf("%d: %v", code, err)
		}
		if r := ep.last(); r == nil || r["handle"] != "" {
			t.Errorf("%d: revoke request %v, want an empty handle", code, r)
		}
	}
}

// TestWebhookErrors: what each bad answer says, and that the body of a
// 2xx answer (it may hold the credential) and the token are never
// quoted.
func TestWebhookErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Hunter2"
	for _, tc := range []struct {
		name   string
		action string
		answer func(w http.ResponseWriter)
		want   string
		never  []string
	}{
		{"500 on grant", "grant", func(w http.ResponseWriter) {
			http.Error(w, "directory unavailable", http.StatusInternalServerError)
		}, `webhook grant: the endpoint answered 500 Internal Server Error: "directory unavailable"`, nil},
		{"500 on revoke", "revoke", func(w http.ResponseWriter) {
			http.Error(w, "directory unavailable", http.StatusInternalServerError)
		}, `webhook revoke: the endpoint answered 500 Internal Server Error: "directory unavailable"`, nil},
		{"403 without a body", "revoke", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusForbidden)
		}, `webhook revoke: the endpoint answered 403 Forbidden`, nil},
		{"long error body", "grant", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "upstream said: "+strings.Repeat("x", 300)+"TAIL")
		}, `502 Bad Gateway: "upstream said: xxx`, []string{"TAIL"}},
		{"201 on grant", "grant", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"credential": {"password": "`+secret+`"}}`)
		}, `answered 201 Created; a grant's answer is 200`, []string{"s3cr"}},
		{"bad JSON on grant", "grant", func(w http.ResponseWriter) {
			io.WriteString(w, `{"credential": {"password": "`+secret+`", "port": 5432}}`)
		}, `webhook grant: "credential" must be an object whose values are all strings`, []string{"s3cr"}},
		{"oversize answer", "grant", func(w http.ResponseWriter) {
			io.WriteString(w, `{"credential": {"password": "`+secret+strings.Repeat("x", hook.MaxAnswerBytes)+`"}}`)
		}, `webhook grant: the answer is larger than 65536 bytes`, []string{"s3cr"}},
		{"redirect", "grant", func(w http.ResponseWriter) {
			w.Header().Set("Location", "https://elsewhere.example.com/")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, `answered 307 Temporary Redirect (redirects are not followed: configure the final URL)`, nil},
		{"the reason phrase is not quoted", "grant", func(w http.ResponseWriter) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 500 " + secret + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			buf.Flush()
		}, `answered 500 Internal Server Error`, []string{"s3cr"}},
		{"unknown status", "revoke", func(w http.ResponseWriter) {
			w.WriteHeader(599)
		}, `answered 599`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
				if action != tc.action {
					t.Errorf("action %q, want %q", action, tc.action)
				}
				tc.answer(w)
			}}
			wh, _ := newWebhook(t, ep, hook.WebhookConfig{}, nil)
			var err error
			if tc.action == "grant" {
				_, err = wh.Grant(context.Background(), sampleGrant())
			} else {
				err = wh.Revoke(context.Background(), sampleGrant(), "h")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
			for _, s := range append(tc.never, testToken) {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes %q: %v", s, err)
				}
			}
			if _, quoted, ok := strings.Cut(err.Error(), `: "`); ok && len(quoted) > hook.MaxBodyQuote+1 {
				t.Fatalf("quoted %d bytes of the body: %v", len(quoted), err)
			}
		})
	}
}

func TestWebhookWrongTokenIsRefusedAndNotQuoted(t *testing.T) {
	t.Parallel()
	ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
		t.Error("a request with the wrong token was served")
	}}
	// The endpoint echoes the Authorization header it got in its 401.
	wh, _ := newWebhook(t, ep, hook.WebhookConfig{TokenEnv: "OTHER_TOKEN"}, map[string]string{"OTHER_TOKEN": "tok-wrong-0123"})
	_, err := wh.Grant(context.Background(), sampleGrant())
	if err == nil || !strings.Contains(err.Error(), `401 Unauthorized: "bad token: Bearer [token]"`) || strings.Contains(err.Error(), "tok-wrong") {
		t.Fatalf("err = %v", err)
	}

	wh, _ = newWebhook(t, ep, hook.WebhookConfig{TokenEnv: "UNSET_TOKEN"}, nil)
	if _, err := wh.Grant(context.Background(), sampleGrant()); err == nil || !strings.Contains(err.Error(), "$UNSET_TOKEN is empty on the airlock server") {
		t.Fatalf("err = %v", err)
	}
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
		served.Add(1)
		<-r.Context().Done() // until airlock hangs up
	}}
	wh, _ := newWebhook(t, ep, hook.WebhookConfig{Timeout: "1s"}, nil)
	_, err := wh.Grant(context.Background(), sampleGrant())
	if err == nil || !strings.Contains(err.Error(), "webhook grant: the endpoint did not answer within 1s") || served.Load() != 1 {
		t.Fatalf("err = %v (%d requests)", err, served.Load())
	}
}

func TestWebhookURLFromTheEnvironment(t *testing.T) {
	t.Parallel()
	ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
		if r.URL.Query().Get("key") != "url-secret-42" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		io.WriteString(w, `{"credential": {}}`)
	}}
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	env := map[string]string{"TOKEN": testToken, "HOOK_URL": srv.URL + "/?key=url-secret-42"}
	wh, err := hook.NewWebhook(hook.WebhookConfig{URLEnv: "HOOK_URL", TokenEnv: "TOKEN"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if iss, err := wh.Grant(context.Background(), sampleGrant()); err != nil || iss.Credential == nil {
		t.Fatalf("issued %+v, %v", iss, err)
	}

	// A URL from the environment is checked at each call and never quoted.
	bad := map[string]string{"TOKEN": testToken, "HOOK_URL": "http://hooks.example.com/?key=url-secret-42"}
	wh, _ = hook.NewWebhook(hook.WebhookConfig{URLEnv: "HOOK_URL", TokenEnv: "TOKEN"}, func(k string) string { return bad[k] })
	if _, err := wh.Grant(context.Background(), sampleGrant()); err == nil || !strings.Contains(err.Error(), "the URL in $HOOK_URL: the URL must use https") || strings.Contains(err.Error(), "url-secret") {
		t.Fatalf("err = %v", err)
	}

	// Nothing listens: the transport error does not repeat the URL.
	closed := httptest.NewServer(ep)
	closed.Close()
	down := map[string]string{"TOKEN": testToken, "HOOK_URL": closed.URL + "/?key=url-secret-42"}
	wh, _ = hook.NewWebhook(hook.WebhookConfig{URLEnv: "HOOK_URL", TokenEnv: "TOKEN"}, func(k string) string { return down[k] })
	if err := wh.Revoke(context.Background(), sampleGrant(), "h"); err == nil || !strings.Contains(err.Error(), "webhook revoke: the endpoint did not answer: ") || strings.Contains(err.Error(), "url-secret") {
		t.Fatalf("err = %v", err)
	}
}

func TestWebhookOverTLS(t *testing.T) {
	t.Parallel()
	ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
		io.WriteString(w, `{"credential": {"kubeconfig": "apiVersion: v1"}, "handle": "rb/acc-1"}`)
	}}
	srv := httptest.NewUnstartedServer(ep)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	wh, err := hook.NewWebhook(hook.WebhookConfig{URL: srv.URL, TokenEnv: "TOKEN"}, func(k string) string { return map[string]string{"TOKEN": testToken}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.Grant(context.Background(), sampleGrant()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a grant through an unknown CA: %v", err)
	}
	iss, err := wh.WithClient(srv.Client()).Grant(context.Background(), sampleGrant())
	if err != nil || iss.Handle != "rb/acc-1" || iss.Credential["kubeconfig"] != "apiVersion: v1" {
		t.Fatalf("issued %+v, %v", iss, err)
	}
}

func TestWebhookThroughTheRegistry(t *testing.T) {
	t.Parallel()
	ep := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, action string) {
		io.WriteString(w, `{"credential": {"a": "b"}}`)
	}}
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	cfg := json.RawMessage(`{"url": "` + srv.URL + `", "tokenEnv": "TOKEN", "timeout": "3s"}`)
	if err := broker.Validate("webhook", cfg); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New("webhook", cfg, func(k string) string { return map[string]string{"TOKEN": testToken}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if iss, err := b.Grant(context.Background(), sampleGrant()); err != nil || iss.Credential["a"] != "b" {
		t.Fatalf("issued %+v, %v", iss, err)
	}
}
