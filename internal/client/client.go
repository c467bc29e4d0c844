// Package client is a typed Go client of airlock's HTTP API (docs/api.md).
// The CLI, the end-to-end tests and the demo talk to a server only through
// it.
//
// Every method takes a context first and returns an error that is either a
// *APIError (the server answered with a problem) or a transport error
// wrapped with the server's address.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/resource"
)

// DefaultServer is the address a client uses when none is configured.
const DefaultServer = "http://127.0.0.1:8640"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// Client calls one airlock server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through h (for
// timeouts, proxies or test transports). The default is a client with no
// overall timeout, since exports and watches stream for as long as they
// need; use contexts to bound calls.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http = h }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8640"; a path prefix is kept) that authenticates with
// token. An empty token sends no Authorization header.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultServer
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server address %q: use http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: token, http: http.DefaultClient, userAgent: "airlock-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Server returns the base address the client calls.
func (c *Client) Server() string { return c.base.String() }

// APIError is a problem the server reported (RFC 9457 problem+json), or a
// response that was not a success and carried no problem document.
type APIError struct {
	Status int
	Type   string
	Title  string
	Detail string
	// Errors lists every individual problem, e.g. one line per invalid
	// field as "quickstart.yaml:12: Environment/prod: spec.tier: ...".
	Errors []string
}

// Error returns the detail (or the title when there is none) followed by
// each item of Errors on its own line.
func (e *APIError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	var b strings.Builder
	b.WriteString(msg)
	for _, item := range e.Errors {
		if item == msg {
			continue
		}
		b.WriteByte('\n')
		b.WriteString(item)
	}
	return b.String()
}

// IsStatus reports whether err is an *APIError with the given status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

type problem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors"`
}

// request is one call: method, path under the base, query, body.
type request struct {
	method      string
	path        string
	query       url.Values
	body        io.Reader
	contentType string
	header      http.Header
	accept      string
}

// do sends r and returns the response when its status is 2xx; otherwise it
// returns an *APIError and closes the body.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	target := c.base.String() + r.path // r.path is built from escaped segments
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, r.body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept+", application/problem+json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err())
		}
		return nil, fmt.Errorf("cannot reach the airlock server at %s (is it running? set --server or AIRLOCK_SERVER): %w", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeProblem(resp)
}

func decodeProblem(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p problem
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(body, &p) == nil {
		e.Type, e.Title, e.Detail, e.Errors = p.Type, p.Title, p.Detail, p.Errors
		return e
	}
	e.Title = http.StatusText(resp.StatusCode)
	if text := strings.TrimSpace(string(body)); text != "" && len(text) < 512 && !strings.HasPrefix(text, "<") {
		e.Detail = fmt.Sprintf("server answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), text)
	}
	return e
}

// call sends r and decodes a JSON success body into out (unless out is nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
	}
	return nil
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return bytes.NewReader(b), nil
}

func seg(s string) string { return url.PathEscape(s) }

// ObjectList is a page of objects of one resource.
type ObjectList struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Items      []*resource.Object `json:"items"`
	// Revision is the store revision the list was read at; a watch can
	// resume after it.
	Revision int64 `json:"revision,omitempty"`
}

// List returns the objects of resource (a plural, singular or alias such
// as "environments" or "env") whose labels match selector (kubectl syntax,
// e.g. "app=shop"; empty matches all).
func (c *Client) List(ctx context.Context, res, selector string) (*ObjectList, error) {
	q := url.Values{}
	if selector != "" {
		q.Set("selector", selector)
	}
	var l ObjectList
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/" + seg(res), query: q}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, res, name string) (*resource.Object, error) {
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/" + seg(res) + "/" + seg(name)}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Create stores a new object and returns it as stored.
func (c *Client) Create(ctx context.Context, res string, obj *resource.Object) (*resource.Object, error) {
	body, err := jsonBody(obj)
	if err != nil {
		return nil, err
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/" + seg(res), body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Update replaces the spec and labels of obj (named by obj.Metadata.Name).
// A non-zero obj.Metadata.Revision asks for compare-and-swap: the server
// answers 409 when the object changed since.
func (c *Client) Update(ctx context.Context, res string, obj *resource.Object) (*resource.Object, error) {
	body, err := jsonBody(obj)
	if err != nil {
		return nil, err
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPut, path: "/api/v1/" + seg(res) + "/" + seg(obj.Metadata.Name), body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Delete removes an object and returns what was deleted ("Kind/name"). A
// non-zero revision must match the stored one; reason is recorded in the
// audit log.
func (c *Client) Delete(ctx context.Context, res, name string, revision int64, reason string) (string, error) {
	q := url.Values{}
	if revision != 0 {
		q.Set("revision", strconv.FormatInt(revision, 10))
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out struct {
		Deleted string `json:"deleted"`
	}
	if err := c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/" + seg(res) + "/" + seg(name), query: q}, &out); err != nil {
		return "", err
	}
	return out.Deleted, nil
}

// ApplyResult is what apply did to one object.
type ApplyResult struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Action   string `json:"action"` // created, configured, unchanged, or proposed (waits for approval)
	Revision int64  `json:"revision"`
	Change   string `json:"change,omitempty"`  // the flag change a guarded write made
	Message  string `json:"message,omitempty"` // what a proposed change waits for
}

// Content types Apply accepts.
const (
	ContentYAML = "application/yaml"
	ContentJSON = "application/json"
)

// Apply sends one or more YAML or JSON documents to be created or updated
// atomically: all of them or none. source names the input in the server's
// error messages (X-Airlock-Source). With dryRun the server validates only.
func (c *Client) Apply(ctx context.Context, source string, body []byte, contentType string, dryRun bool) ([]ApplyResult, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dryRun", "true")
	}
	if contentType == "" {
		contentType = ContentYAML
	}
	h := http.Header{}
	if source != "" {
		h.Set("X-Airlock-Source", source)
	}
	var out struct {
		Results []ApplyResult `json:"results"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/apply", query: q, body: bytes.NewReader(body), contentType: contentType, header: h}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// Artifact identifies a release's artifact by content.
type Artifact struct {
	Digest string `json:"digest"` // sha256:<64 hex>
	Name   string `json:"name,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// ReleaseRequest registers a release.
type ReleaseRequest struct {
	App      string   `json:"app"`
	Version  string   `json:"version"`
	Artifact Artifact `json:"artifact"`
	Commit   string   `json:"commit"`
	Authors  []string `json:"authors,omitempty"`
}

// CreateRelease registers an immutable release and returns the Release
// object (named APP-VERSION). A second release of the same app and version
// is a 409.
func (c *Client) CreateRelease(ctx context.Context, r ReleaseRequest) (*resource.Object, error) {
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/releases", body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// TokenRequest asks for a new API token.
type TokenRequest struct {
	Name         string    `json:"name"`
	Roles        []string  `json:"roles"`
	Environments []string  `json:"environments,omitempty"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
}

// NewToken is the answer to CreateToken. Token holds the secret, which the
// server shows only this once.
type NewToken struct {
	Name         string    `json:"name"`
	Token        string    `json:"token"`
	Roles        []string  `json:"roles"`
	Environments []string  `json:"environments"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
	// Raw is the server's answer as sent, for printing it unchanged.
	Raw json.RawMessage `json:"-"`
}

// CreateToken creates a token and returns its secret.
func (c *Client) CreateToken(ctx context.Context, r TokenRequest) (*NewToken, error) {
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/tokens", body: body, contentType: "application/json"}, &raw); err != nil {
		return nil, err
	}
	var t NewToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("POST /api/v1/tokens: decode response: %w", err)
	}
	t.Raw = raw
	return &t, nil
}

// ListTokens returns the Token objects (never their secrets).
func (c *Client) ListTokens(ctx context.Context) ([]*resource.Object, error) {
	l, err := c.List(ctx, "tokens", "")
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// RevokeToken revokes a token and returns the Token object with
// status.revokedAt set.
func (c *Client) RevokeToken(ctx context.Context, name, reason string) (*resource.Object, error) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + seg(name), query: q}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Identity is who the server takes the caller to be.
type Identity struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	// Environments limits Roles when non-empty (docs/api.md); servers that
	// send Grants leave it empty.
	Environments []string `json:"environments,omitempty"`
	// Grants are the caller's roles, each set limited to some environments
	// or to none, and where it comes from (the token or a role binding).
	Grants []Grant `json:"grants,omitempty"`
}

// Grant is one set of roles, limited to Environments when non-empty.
type Grant struct {
	Roles        []string `json:"roles"`
	Environments []string `json:"environments,omitempty"`
	From         string   `json:"from,omitempty"` // "token" or "RoleBinding/NAME"
}

// WhoAmI returns the caller's identity.
func (c *Client) WhoAmI(ctx context.Context) (*Identity, error) {
	var id Identity
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, &id); err != nil {
		return nil, err
	}
	return &id, nil
}

// AuditFilter narrows AuditEntries. Zero fields do not filter.
type AuditFilter struct {
	Actor string
	Kind  string
	Since time.Time
	After int64 // only entries with a greater sequence number
	Limit int
}

func (f AuditFilter) query() url.Values {
	q := url.Values{}
	if f.Actor != "" {
		q.Set("actor", f.Actor)
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatInt(f.After, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// AuditEntries returns audit entries matching f, in sequence order.
func (c *Client) AuditEntries(ctx context.Context, f AuditFilter) ([]audit.Entry, error) {
	var out struct {
		Items []audit.Entry `json:"items"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/entries", query: f.query()}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// AuditExport streams the whole log as JSONL (see audit.VerifyExport) into
// w and returns the number of bytes written. On error w may hold a partial
// export.
func (c *Client) AuditExport(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit/export", accept: "application/jsonl"})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("audit export: interrupted after %d bytes: %w", n, err)
	}
	return n, nil
}

// VerifyResult is the server's verification of its stored log.
type VerifyResult struct {
	OK      bool         `json:"ok"`
	Summary string       `json:"summary"`
	Report  audit.Report `json:"report"`
}

// AuditVerify asks the server to verify its stored log. A broken chain is
// not an error: the result's OK is false and Summary names the first
// broken entry.
func (c *Client) AuditVerify(ctx context.Context) (*VerifyResult, error) {
	var out VerifyResult
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/audit/verify"}, &out); err != nil {
		return nil, err
	}
	if out.Summary == "" {
		out.Summary = out.Report.String()
	}
	return &out, nil
}

// SignCheckpoint asks the server to sign a checkpoint over the log now.
func (c *Client) SignCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	var cp audit.Checkpoint
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/audit/checkpoints"}, &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

// Checkpoints returns every signed checkpoint.
func (c *Client) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	var out struct {
		Items []audit.Checkpoint `json:"items"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit/checkpoints"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// PublicKey returns the server's audit public key as PEM ("PUBLIC KEY").
// Parse it with audit.ParsePublicKey.
func (c *Client) PublicKey(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit/public-key", accept: "text/plain"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	if _, err := audit.ParsePublicKey(b); err != nil {
		return nil, fmt.Errorf("server's public key: %w", err)
	}
	return b, nil
}
