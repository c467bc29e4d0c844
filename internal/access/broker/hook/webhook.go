package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

// Limits of the webhook broker.
const (
	DefaultWebhookTimeout = 10 * time.Second
	// MaxBodyQuote is how much of the start of a non-2xx answer's body an
	// error quotes.
	MaxBodyQuote = 256
)

// WebhookConfig is the configuration of a "webhook" broker:
//
//	{"url": "https://access.example.com/airlock", "tokenEnv": "AIRLOCK_ACCESS_HOOK_TOKEN", "timeout": "10s"}
//
// Exactly one of URL and URLEnv is given. Objects are readable, so a URL
// that holds a secret goes in an environment variable (URLEnv) and a
// token always does (TokenEnv).
type WebhookConfig struct {
	URL      string `json:"url,omitempty"`
	URLEnv   string `json:"urlEnv,omitempty"`   // an environment variable of the server holding the URL
	TokenEnv string `json:"tokenEnv,omitempty"` // an environment variable holding a bearer token
	Timeout  string `json:"timeout,omitempty"`  // 1s to 5m, default 10s
}

// DecodeWebhookConfig strictly decodes and checks a webhook broker's
// configuration; the error names the field at fault. It reads no
// environment variable.
func DecodeWebhookConfig(config json.RawMessage) (WebhookConfig, error) {
	fields, err := decodeFields("webhook", config, "url", "urlEnv", "tokenEnv", "timeout")
	if err != nil {
		return WebhookConfig{}, err
	}
	var cfg WebhookConfig
	for _, f := range []struct {
		name string
		dst  *string
	}{{"url", &cfg.URL}, {"urlEnv", &cfg.URLEnv}, {"tokenEnv", &cfg.TokenEnv}, {"timeout", &cfg.Timeout}} {
		if *f.dst, err = decodeString("webhook", fields, f.name); err != nil {
			return WebhookConfig{}, err
		}
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration; the error names the field at fault.
func (c WebhookConfig) Validate() error {
	switch {
	case c.URL != "" && c.URLEnv != "":
		return errors.New("webhook: give url or urlEnv, not both")
	case c.URLEnv != "":
		if !envRE.MatchString(c.URLEnv) {
			return fmt.Errorf("webhook.urlEnv %q must be an environment variable name such as AIRLOCK_ACCESS_HOOK_URL", c.URLEnv)
		}
	default:
		if err := checkURL(c.URL); err != nil {
			return fmt.Errorf("webhook.url: %v", err)
		}
	}
	if c.TokenEnv != "" && !envRE.MatchString(c.TokenEnv) {
		return fmt.Errorf("webhook.tokenEnv %q must be an environment variable name such as AIRLOCK_ACCESS_HOOK_TOKEN (the token itself is never stored in the object)", c.TokenEnv)
	}
	_, err := parseTimeout("webhook", c.Timeout, DefaultWebhookTimeout)
	return err
}

// checkURL accepts an https URL, or an http URL to a loopback address
// (a sidecar on the same host): credentials travel in the answer.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("the URL must be an absolute https URL, e.g. https://access.example.com/airlock")
	}
	if u.User != nil {
		return errors.New("the URL must not carry credentials: objects are readable; use tokenEnv")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("the URL must use https (http only to localhost): the answer carries a credential")
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Webhook is the "webhook" broker: it POSTs each grant and revocation as
// JSON to the configured endpoint. It is safe for concurrent use.
type Webhook struct {
	cfg     WebhookConfig
	env     broker.Env
	timeout time.Duration
	client  *http.Client
}

// NewWebhook builds a webhook broker. env gives the URL (urlEnv) and the
// token (tokenEnv); they are read at each call, and nil reads the process
// environment.
func NewWebhook(cfg WebhookConfig, env broker.Env) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	timeout, _ := parseTimeout("webhook", cfg.Timeout, DefaultWebhookTimeout)
	if env == nil {
		env = os.Getenv
	}
	return &Webhook{cfg: cfg, env: env, timeout: timeout, client: http.DefaultClient}, nil
}

// WithClient returns a copy of w that sends its requests through c (a
// proxy, a private CA, a test server's client). Redirects are never
// followed, whatever c's policy: a redirect is an error.
func (w *Webhook) WithClient(c *http.Client) *Webhook {
	cp := *w
	cp.client = c
	return &cp
}

// webhookGrant is broker.Grant on the wire.
type webhookGrant struct {
	ID          string   `json:"id"`
	Requester   string   `json:"requester"`
	Environment string   `json:"environment"`
	Resource    string   `json:"resource"`
	Role        string   `json:"role"`
	Grants      []string `json:"grants"`
	NotBefore   string   `json:"notBefore"`
	NotAfter    string   `json:"notAfter"`
	PublicKey   string   `json:"publicKey"`
}

type webhookRequest struct {
	Action string       `json:"action"`
	Grant  webhookGrant `json:"grant"`
	Handle *string      `json:"handle,omitempty"` // revoke only
}

// Grant POSTs {"action": "grant", "grant": {...}} and expects 200 with
// an answer ParseAnswer takes. The endpoint must be idempotent by
// grant.id: a crashed grant is granted again. A non-2xx answer is an
// error naming the status and quoting at most MaxBodyQuote bytes of the
// body; the body of a 2xx answer (it may hold a credential) is never
// quoted.
func (w *Webhook) Grant(ctx context.Context, g broker.Grant) (broker.Issued, error) {
	code, body, err := w.call(ctx, webhookRequest{Action: "grant", Grant: wireGrant(g)})
	if err != nil {
		return broker.Issued{}, fmt.Errorf("webhook grant: %w", err)
	}
	switch {
	case code < 200 || code > 299:
		return broker.Issued{}, fmt.Errorf("webhook grant: the endpoint answered %s", w.refusal(code, body))
	case code != http.StatusOK:
		return broker.Issued{}, fmt.Errorf(`webhook grant: the endpoint answered %s; a grant's answer is 200 with {"credential": {...}, "handle": "..."}`, statusText(code))
	case len(body) > MaxAnswerBytes:
		return broker.Issued{}, fmt.Errorf("webhook grant: the answer is larger than %d bytes", MaxAnswerBytes)
	}
	iss, err := ParseAnswer(body)
	if err != nil {
		return broker.Issued{}, fmt.Errorf("webhook grant: %v", err)
	}
	return iss, nil
}

// Revoke POSTs {"action": "revoke", "grant": {...}, "handle": "..."}.
// Any 2xx is success, and so are 404 and 410 (already gone); the body is
// ignored. Other answers are errors as Grant's.
func (w *Webhook) Revoke(ctx context.Context, g broker.Grant, handle string) error {
	code, body, err := w.call(ctx, webhookRequest{Action: "revoke", Grant: wireGrant(g), Handle: &handle})
	if err != nil {
		return fmt.Errorf("webhook revoke: %w", err)
	}
	if (code >= 200 && code <= 299) || code == http.StatusNotFound || code == http.StatusGone {
		return nil
	}
	return fmt.Errorf("webhook revoke: the endpoint answered %s", w.refusal(code, body))
}

func wireGrant(g broker.Grant) webhookGrant {
	grants := g.Grants
	if grants == nil {
		grants = []string{}
	}
	return webhookGrant{
		ID: g.ID, Requester: g.Requester, Environment: g.Environment, Resource: g.Resource, Role: g.Role,
		Grants: grants, NotBefore: rfc3339(g.NotBefore), NotAfter: rfc3339(g.NotAfter), PublicKey: g.PublicKey,
	}
}

// call POSTs req and returns the status code and up to MaxAnswerBytes+1
// bytes of the body. Its errors name neither the URL (it may hold a
// secret) nor the token.
func (w *Webhook) call(ctx context.Context, req webhookRequest) (int, []byte, error) {
	target := w.cfg.URL
	if w.cfg.URLEnv != "" {
		target = w.env(w.cfg.URLEnv)
		if err := checkURL(target); err != nil {
			return 0, nil, fmt.Errorf("the URL in $%s: %v", w.cfg.URLEnv, err)
		}
	}
	var token string
	if w.cfg.TokenEnv != "" {
		if token = w.env(w.cfg.TokenEnv); token == "" {
			return 0, nil, fmt.Errorf("$%s is empty on the airlock server; set it to the endpoint's bearer token", w.cfg.TokenEnv)
		}
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, w.timeout, errTimedOut)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, errors.New("the URL is not a valid request URL")
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "airlock")
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	client := *w.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(hreq)
	if err != nil {
		return 0, nil, w.transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer (%s): %v", statusText(resp.StatusCode), w.transportError(ctx, err))
	}
	return resp.StatusCode, body, nil
}

func (w *Webhook) transportError(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errTimedOut) {
		return fmt.Errorf("the endpoint did not answer within %s", w.timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("the call was stopped: %v", ctx.Err())
	}
	// A *url.Error repeats the URL, which may hold a secret (urlEnv).
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("the endpoint did not answer: %v", err)
}

// refusal describes a non-2xx answer: its status and the start of its
// body, with the bearer token blotted out should the endpoint echo it.
func (w *Webhook) refusal(code int, body []byte) string {
	s := string(body)
	if w.cfg.TokenEnv != "" {
		if tok := w.env(w.cfg.TokenEnv); tok != "" {
			s = strings.ReplaceAll(s, tok, "[token]")
		}
	}
	if len(s) > MaxBodyQuote {
		s = s[:MaxBodyQuote]
		for len(s) > 0 && !utf8.ValidString(s) && len(s) > MaxBodyQuote-utf8.UTFMax {
			s = s[:len(s)-1]
		}
	}
	s = strings.TrimSpace(s)
	out := statusText(code)
	if code >= 300 && code <= 399 {
		out += " (redirects are not followed: configure the final URL)"
	}
	if s != "" {
		out += fmt.Sprintf(": %q", s)
	}
	return out
}

// statusText is "500 Internal Server Error", from the code alone: the
// reason phrase an endpoint sends is not quoted.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("%d", code)
}
