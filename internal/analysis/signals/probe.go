package signals

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// StatusRange is an inclusive range of HTTP statuses; "200" and
// "200-299" in configuration.
type StatusRange struct{ Min, Max int }

// ParseStatusRange parses "200" or "200-299".
func ParseStatusRange(s string) (StatusRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		return StatusRange{}, fmt.Errorf("status %q is not a status (100-599) or a range like 200-299", s)
	}
	return StatusRange{a, b}, nil
}

func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// ProbeConfig is one synthetic HTTP probe against the candidate.
type ProbeConfig struct {
	Name string `json:"name"`
	// Method defaults to GET.
	Method string `json:"method,omitempty"`
	// URL may hold {{app}}, {{environment}} and {{version}}; values are
	// percent-encoded.
	URL string `json:"url"`
	// ExpectStatus lists accepted statuses and ranges, e.g. ["200-299",
	// "304"]. Default ["200-299"].
	ExpectStatus []string `json:"expectStatus,omitempty"`
	// BodyContains and BodyRegex, when set, must both match the first
	// MaxBodyBytes of the body.
	BodyContains string `json:"bodyContains,omitempty"`
	BodyRegex    string `json:"bodyRegex,omitempty"`
	// Timeout bounds one probe, connection included. Default 10s.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Headers are sent with the request; values may hold the same
	// placeholders as URL (e.g. X-Airlock-Version: {{version}} reaches
	// the candidate through airlock's router).
	Headers map[string]string `json:"headers,omitempty"`
	// Interval is the schedule of a Monitor. Default 30s.
	Interval time.Duration `json:"interval,omitempty"`
	// MaxBodyBytes is how much of the body is read. Default 1 MiB.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// Probe defaults.
const (
	DefaultProbeInterval = 30 * time.Second
	DefaultMaxBodyBytes  = 1 << 20
)

// Validate reports every problem with p, each prefixed with path (for
// example "analysis.probes[0]"), joined with errors.Join.
func (p ProbeConfig) Validate(path string) error {
	_, err := compileProbe(p, path)
	return err
}

// Probe is a compiled ProbeConfig. It is safe for concurrent use.
type Probe struct {
	cfg     ProbeConfig
	url     *Template
	headers map[string]*Template
	labels  Labels // for the headers, set per run
	status  []StatusRange
	re      *regexp.Regexp
	http    *http.Client
}

func compileProbe(p ProbeConfig, path string) (*Probe, error) {
	var errs []error
	pr := &Probe{cfg: p}
	if p.Name == "" {
		errs = append(errs, fmt.Errorf("%s.name: required", path))
	}
	if p.Method == "" {
		pr.cfg.Method = http.MethodGet
	} else if !validToken(p.Method) {
		errs = append(errs, fmt.Errorf("%s.method: %q is not an HTTP method", path, p.Method))
	}
	if p.URL == "" {
		errs = append(errs, fmt.Errorf("%s.url: required", path))
	} else if t, err := ParseTemplate(p.URL); err != nil {
		errs = append(errs, fmt.Errorf("%s.url: %w", path, err))
	} else {
		pr.url = t
		// Render with sample values to check the URL's shape now.
		u, err := url.Parse(t.Execute(Labels{App: "app", Environment: "env", Version: "v1"}, EscapeURL))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.url: %v", path, err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("%s.url: scheme %q is not http or https", path, u.Scheme))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("%s.url: no host", path))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("%s.url: credentials in the URL are not allowed (they would be logged and kept in the results)", path))
		}
	}
	for k, v := range p.Headers {
		t, err := ParseTemplate(v)
		switch {
		case !validToken(k):
			errs = append(errs, fmt.Errorf("%s.headers: %q is not a header name", path, k))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.headers.%s: %w", path, k, err))
		case strings.ContainsAny(v, "\r\n\x00"):
			errs = append(errs, fmt.Errorf("%s.headers.%s: a header value may not hold a line break", path, k))
		default:
			if pr.headers == nil {
				pr.headers = map[string]*Template{}
			}
			pr.headers[k] = t
		}
	}
	statuses := p.ExpectStatus
	if len(statuses) == 0 {
		statuses = []string{"200-299"}
	}
	for i, s := range statuses {
		r, err := ParseStatusRange(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.expectStatus[%d]: %v", path, i, err))
			continue
		}
		pr.status = append(pr.status, r)
	}
	if p.BodyRegex != "" {
		re, err := regexp.Compile(p.BodyRegex)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.bodyRegex: %v", path, err))
		}
		pr.re = re
	}
	if p.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: negative", path))
	} else if p.Timeout == 0 {
		pr.cfg.Timeout = DefaultTimeout
	}
	if p.Interval < 0 {
		errs = append(errs, fmt.Errorf("%s.interval: negative", path))
	} else if p.Interval == 0 {
		pr.cfg.Interval = DefaultProbeInterval
	}
	if p.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.maxBodyBytes: negative", path))
	} else if p.MaxBodyBytes == 0 {
		pr.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pr, nil
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// NewProbe validates cfg and compiles it. h is the HTTP client to use; nil
// means a client with its own transport that does not follow redirects
// (a redirect is a status the probe judges).
func NewProbe(cfg ProbeConfig, h *http.Client) (*Probe, error) {
	p, err := compileProbe(cfg, "probe")
	if err != nil {
		return nil, &Error{Source: cfg.Name, Kind: KindConfig, Err: err}
	}
	if h == nil {
		h = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	p.http = h
	return p, nil
}

// Name returns the probe's name.
func (p *Probe) Name() string { return p.cfg.Name }

// Interval returns the probe's schedule.
func (p *Probe) Interval() time.Duration { return p.cfg.Interval }

// ProbeResult is the outcome of one probe.
type ProbeResult struct {
	Time     time.Time     `json:"time"`
	URL      string        `json:"url"`
	OK       bool          `json:"ok"`
	Status   int           `json:"status,omitempty"` // 0 when no response came
	Duration time.Duration `json:"duration"`
	Kind     Kind          `json:"kind,omitempty"`   // "" when OK
	Reason   string        `json:"reason,omitempty"` // why it failed, for a person
	Err      error         `json:"-"`                // the *Error, nil when OK
}

// Run performs the probe once for l, timing it with clock (nil means the
// system clock). Run never returns an error: every failure — DNS,
// refused connection, timeout, an unexpected status or body — is a
// ProbeResult with OK false, a Kind and a Reason.
func (p *Probe) Run(ctx context.Context, l Labels, clock Clock) ProbeResult {
	if clock == nil {
		clock = SystemClock{}
	}
	target := p.url.Execute(l, EscapeURL)
	res := ProbeResult{Time: clock.Now(), URL: target}
	err := p.withLabels(l).run(ctx, target, &res)
	res.Duration = clock.Now().Sub(res.Time)
	if err != nil {
		err.Source = p.cfg.Name
		res.Kind = err.Kind
		res.Reason = err.Err.Error()
		res.Err = err
		return res
	}
	res.OK = true
	return res
}

func (p *Probe) run(ctx context.Context, target string, res *ProbeResult) *Error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, p.cfg.Method, target, nil)
	if err != nil {
		return &Error{Kind: KindConfig, Err: fmt.Errorf("request %s %s: %v", p.cfg.Method, target, err)}
	}
	req.Header.Set("User-Agent", "airlock-probe")
	for k, t := range p.headers {
		req.Header.Set(k, t.Execute(p.labels, stripBreaks))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return transportError(ctx, err, p.cfg.Timeout)
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxBodyBytes))
	if err != nil {
		e := transportError(ctx, err, p.cfg.Timeout)
		e.Status = resp.StatusCode
		return e
	}
	if !p.statusOK(resp.StatusCode) {
		return &Error{Kind: KindStatus, Status: resp.StatusCode, Err: fmt.Errorf("status %d, want %s", resp.StatusCode, p.statusList())}
	}
	if p.cfg.BodyContains != "" && !bytes.Contains(body, []byte(p.cfg.BodyContains)) {
		return &Error{Kind: KindBody, Status: resp.StatusCode, Err: fmt.Errorf("body (%d bytes read) does not contain %q", len(body), p.cfg.BodyContains)}
	}
	if p.re != nil && !p.re.Match(body) {
		return &Error{Kind: KindBody, Status: resp.StatusCode, Err: fmt.Errorf("body (%d bytes read) does not match /%s/", len(body), p.cfg.BodyRegex)}
	}
	return nil
}

// withLabels returns a copy of p that renders its headers for l.
func (p *Probe) withLabels(l Labels) *Probe {
	q := *p
	q.labels = l
	return &q
}

// stripBreaks keeps a header value on one line.
func stripBreaks(s string) string {
	return strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(s)
}

func (p *Probe) statusOK(code int) bool {
	for _, r := range p.status {
		if r.Min <= code && code <= r.Max {
			return true
		}
	}
	return false
}

func (p *Probe) statusList() string {
	parts := make([]string, len(p.status))
	for i, r := range p.status {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}
