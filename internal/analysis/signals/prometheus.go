package signals

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PrometheusConfig configures a Prometheus HTTP API client. Credentials
// are named by environment variable, never stored: the variables are read
// on every request, so a rotated token takes effect at once.
type PrometheusConfig struct {
	// URL is the Prometheus base URL, e.g. "http://prometheus:9090" or
	// "https://example.com/prometheus"; "/api/v1/query" is appended.
	URL string `json:"url"`
	// BearerTokenEnv names the variable holding a bearer token.
	BearerTokenEnv string `json:"bearerTokenEnv,omitempty"`
	// BasicUserEnv and BasicPasswordEnv name the variables holding basic
	// auth credentials. Both or neither; not together with BearerTokenEnv.
	BasicUserEnv     string `json:"basicUserEnv,omitempty"`
	BasicPasswordEnv string `json:"basicPasswordEnv,omitempty"`
	// Timeout bounds one query, connection included. Default 10s.
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxResponseBytes, MaxSeries and MaxSamples bound one response.
	// Defaults: 10 MiB, 10,000 series, 1,000,000 samples.
	MaxResponseBytes int64 `json:"maxResponseBytes,omitempty"`
	MaxSeries        int   `json:"maxSeries,omitempty"`
	MaxSamples       int   `json:"maxSamples,omitempty"`
}

// DefaultTimeout is the timeout of a query or probe when none is set.
const DefaultTimeout = 10 * time.Second

// Validate reports every problem with c, each prefixed with path (for
// example "analysis.prometheus"), joined with errors.Join.
func (c PrometheusConfig) Validate(path string) error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, fmt.Errorf("%s.url: required", path))
	case err != nil:
		errs = append(errs, fmt.Errorf("%s.url: %v", path, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("%s.url: scheme %q is not http or https", path, u.Scheme))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("%s.url: no host", path))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("%s.url: credentials in the URL are not allowed; name environment variables in basicUserEnv and basicPasswordEnv", path))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("%s.url: a query or fragment is not allowed", path))
	}
	if (c.BasicUserEnv == "") != (c.BasicPasswordEnv == "") {
		errs = append(errs, fmt.Errorf("%s: basicUserEnv and basicPasswordEnv go together", path))
	}
	if c.BearerTokenEnv != "" && (c.BasicUserEnv != "" || c.BasicPasswordEnv != "") {
		errs = append(errs, fmt.Errorf("%s: bearerTokenEnv and basic auth exclude each other", path))
	}
	for _, f := range []struct{ name, v string }{{"bearerTokenEnv", c.BearerTokenEnv}, {"basicUserEnv", c.BasicUserEnv}, {"basicPasswordEnv", c.BasicPasswordEnv}} {
		if f.v != "" && !validEnvName(f.v) {
			errs = append(errs, fmt.Errorf("%s.%s: %q is not an environment variable name", path, f.name, f.v))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: negative", path))
	}
	if c.MaxResponseBytes < 0 || c.MaxSeries < 0 || c.MaxSamples < 0 {
		errs = append(errs, fmt.Errorf("%s: response limits must not be negative", path))
	}
	return errors.Join(errs...)
}

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return s != ""
}

// Client queries a Prometheus HTTP API. It is safe for concurrent use.
type Client struct {
	cfg    PrometheusConfig
	base   *url.URL
	http   *http.Client
	getenv func(string) (string, bool)
	limits Limits
}

// ClientOption adjusts a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: a client with its own
// transport). Its Timeout is left alone; the config's Timeout applies
// through the request context.
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// WithLookupEnv sets how environment variables are read (default
// os.LookupEnv). Tests use it to supply credentials.
func WithLookupEnv(f func(string) (string, bool)) ClientOption {
	return func(c *Client) { c.getenv = f }
}

// NewClient validates cfg and returns a client.
func NewClient(cfg PrometheusConfig, opts ...ClientOption) (*Client, error) {
	if err := cfg.Validate("prometheus"); err != nil {
		return nil, &Error{Kind: KindConfig, Err: err}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	base, _ := url.Parse(strings.TrimRight(cfg.URL, "/"))
	c := &Client{
		cfg:    cfg,
		base:   base,
		http:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		getenv: os.LookupEnv,
		limits: Limits{MaxBytes: cfg.MaxResponseBytes, MaxSeries: cfg.MaxSeries, MaxSamples: cfg.MaxSamples}.withDefaults(),
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Query runs an instant query at time at (the server's "now" when at is
// zero). The result may hold NaN samples or no series; Result.Check
// turns those into errors.
func (c *Client) Query(ctx context.Context, query string, at time.Time) (*Result, error) {
	form := url.Values{"query": {query}}
	if !at.IsZero() {
		form.Set("time", formatTime(at))
	}
	return c.do(ctx, "/api/v1/query", form)
}

// Range is the time range and resolution of a range query.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// QueryRange runs a range query. It refuses an empty or inverted range and
// a step that is not positive, as a KindConfig error, without a request.
func (c *Client) QueryRange(ctx context.Context, query string, r Range) (*Result, error) {
	if r.Step <= 0 || r.Start.IsZero() || r.End.Before(r.Start) {
		return nil, &Error{Kind: KindConfig, Err: fmt.Errorf("range %s..%s step %s is invalid: need start <= end and a positive step", r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), r.Step)}
	}
	form := url.Values{
		"query": {query},
		"start": {formatTime(r.Start)},
		"end":   {formatTime(r.End)},
		"step":  {strconv.FormatFloat(r.Step.Seconds(), 'f', -1, 64)},
	}
	return c.do(ctx, "/api/v1/query_range", form)
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}

func (c *Client) do(ctx context.Context, path string, form url.Values) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	form.Set("timeout", strconv.FormatFloat(c.cfg.Timeout.Seconds(), 'f', -1, 64)+"s")
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Kind: KindConfig, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if err := c.authorize(req); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(ctx, err, c.cfg.Timeout)
	}
	defer resp.Body.Close()
	res, err := ReadResponse(resp.Body, c.limits)
	if err != nil {
		var se *Error
		if ctx.Err() != nil {
			return nil, transportError(ctx, err, c.cfg.Timeout)
		}
		if !errors.As(err, &se) {
			return nil, &Error{Kind: KindNetwork, Status: resp.StatusCode, Err: fmt.Errorf("read response: %w", err)}
		}
		se.Status = resp.StatusCode
		if resp.StatusCode/100 != 2 && se.Kind == KindMalformed {
			// Not an API error envelope: a proxy, a login page, a 404.
			se.Kind = KindHTTP
			se.Err = fmt.Errorf("HTTP %s from %s", resp.Status, u.Redacted())
		}
		return nil, se
	}
	if resp.StatusCode/100 != 2 {
		return nil, &Error{Kind: KindHTTP, Status: resp.StatusCode, Err: fmt.Errorf("HTTP %s with a success body from %s", resp.Status, u.Redacted())}
	}
	return res, nil
}

func (c *Client) authorize(req *http.Request) error {
	switch {
	case c.cfg.BearerTokenEnv != "":
		tok, ok := c.getenv(c.cfg.BearerTokenEnv)
		if !ok || tok == "" {
			return &Error{Kind: KindConfig, Err: fmt.Errorf("environment variable %s (bearerTokenEnv) is not set", c.cfg.BearerTokenEnv)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case c.cfg.BasicUserEnv != "":
		user, ok1 := c.getenv(c.cfg.BasicUserEnv)
		pass, ok2 := c.getenv(c.cfg.BasicPasswordEnv)
		if !ok1 || !ok2 {
			return &Error{Kind: KindConfig, Err: fmt.Errorf("environment variables %s and %s (basic auth) must both be set", c.cfg.BasicUserEnv, c.cfg.BasicPasswordEnv)}
		}
		req.SetBasicAuth(user, pass)
	}
	return nil
}

// transportError classifies a failed round trip or body read.
func transportError(ctx context.Context, err error, timeout time.Duration) *Error {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return &Error{Kind: KindCanceled, Err: err}
	case errors.As(err, &dns):
		// Before the timeout case: a lookup that timed out is still a
		// name that did not resolve, and the reason says so.
		return &Error{Kind: KindDNS, Err: fmt.Errorf("host %q does not resolve: %w", dns.Name, err)}
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: KindTimeout, Err: fmt.Errorf("no answer within %s: %w", timeout, err)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Kind: KindRefused, Err: fmt.Errorf("connection refused: %w", err)}
	}
	return &Error{Kind: KindNetwork, Err: err}
}
