// Package analysis judges a new version while it rolls out. A Controller
// watches every canary and rolling update whose application declares
// analysis in the environment, gathers the signals (the router's
// per-version requests, errors and latency, instance health, synthetic
// probes, Prometheus queries, the versions' logs), and hands them to the
// pure Judge. At each step's end, or as soon as something is wrong, it
// records a Verdict with per-signal results, a confidence, an explanation
// and a recommended action, and carries the action out when the
// environment's policy lets it run automatically.
//
// The AnalysisTemplate kind configures it; the built-in default template
// is the seeds' trigger table (docs/analysis.md).
package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/signals"
	"github.com/airlock-dev/airlock/internal/analysis/stats"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Kind is the kind this package owns.
const Kind = "AnalysisTemplate"

// The sequential tests on error counts a template may choose.
const (
	TestRobust  = "robust"
	TestMixture = "mixture"
)

// DefaultName is the template an application gets when it names none.
const DefaultName = "default"

// TemplateSpec is an AnalysisTemplate's spec.
type TemplateSpec struct {
	Description string `json:"description,omitempty"`
	// Interval is how often the judge looks (default 10s, 1s to 5m).
	Interval string `json:"interval,omitempty"`
	// Window is the span trigger metrics are measured over, the
	// candidate's and the baseline's alike (default 1m).
	Window string `json:"window,omitempty"`
	// Soak is how long each rolling batch is watched before its verdict
	// (default 1m). A canary step soaks for its own pause.
	Soak string `json:"soak,omitempty"`
	// MinRequests is how many requests the candidate must have served in
	// a step before the step can pass (default 50). Fewer makes the
	// step's verdict inconclusive: no data is never a pass.
	MinRequests int `json:"minRequests,omitempty"`
	// MaxSignalErrors is how many consecutive errors fetching one signal
	// (a Prometheus timeout, a probe host that does not resolve) make the
	// verdict inconclusive (default 3).
	MaxSignalErrors int `json:"maxSignalErrors,omitempty"`
	// MaxExtensions is how often a step's soak may be extended before an
	// unclear step pauses instead (default 1).
	MaxExtensions *int `json:"maxExtensions,omitempty"`
	// Triggers are the template's rules; omitted, they are the seeds'
	// table (DefaultTemplate); an empty list declares none.
	Triggers   []application.Trigger `json:"triggers"`
	Judge      JudgeSpec             `json:"judge,omitempty"`
	Logs       LogsSpec              `json:"logs,omitempty"`
	Prometheus *PrometheusSpec       `json:"prometheus,omitempty"`
	Queries    []QuerySpec           `json:"queries,omitempty"`
	Probes     []ProbeSpec           `json:"probes,omitempty"`
}

// JudgeSpec configures the statistical judge.
type JudgeSpec struct {
	// Test is the sequential test on error counts: robust (the default)
	// bounds the evidence of each Block of time, so a burst of errors on
	// the candidate alone is not a regression unless it lasts; mixture
	// weighs every error (faster, but a short burst local to the
	// candidate can roll it back). See docs/analysis-stats.md.
	Test  string `json:"test,omitempty"`
	Block string `json:"block,omitempty"`
	// Alpha bounds the sequential test's false rollbacks (default 0.0005
	// for robust, 0.01 for mixture). ErrorAction is what its rejection
	// recommends (default rollback-canary).
	Alpha       float64 `json:"alpha,omitempty"`
	ErrorAction string  `json:"errorAction,omitempty"`
	// Confidence and Tolerance are the Mann–Whitney classifier's (default
	// 0.98 and 0.25, as Kayenta). Pass and Marginal are the score
	// thresholds (default 95 and 75): at or above Pass the step passes,
	// below Marginal it fails, in between its soak is extended.
	Confidence float64 `json:"confidence,omitempty"`
	Tolerance  float64 `json:"tolerance,omitempty"`
	// Band is what the tolerance is a fraction of: baseline (the default:
	// the baseline's median, so a shift must be that large to count) or
	// estimate (Kayenta's rule: the shift estimate itself, so any shift
	// the test is sure of counts).
	Band     string  `json:"band,omitempty"`
	Pass     float64 `json:"pass,omitempty"`
	Marginal float64 `json:"marginal,omitempty"`
	// Groups weighs metric groups in the score (default: equal weights).
	Groups map[string]float64 `json:"groups,omitempty"`
	// Metrics adjusts the built-in metrics (error-rate, latency) and the
	// queries' metrics: their group, criticality, or switches one off.
	Metrics []MetricSpec `json:"metrics,omitempty"`
}

// MetricSpec adjusts one metric of the judge.
type MetricSpec struct {
	Name string `json:"name"`
	// Direction is increase (only a rise is bad, the default), decrease
	// or either.
	Direction string `json:"direction,omitempty"`
	Group     string `json:"group,omitempty"`
	// Critical fails the whole verdict when this metric fails.
	Critical *bool `json:"critical,omitempty"`
	Disabled bool  `json:"disabled,omitempty"`
}

// LogsSpec configures the log-pattern signal.
type LogsSpec struct {
	Disabled bool `json:"disabled,omitempty"`
	// Lines is how many of each instance's newest log lines are mined
	// (default 2000, at most 100000).
	Lines int `json:"lines,omitempty"`
	// Critical makes a new error template fail the verdict by itself;
	// otherwise it counts as one failed metric in the score.
	Critical bool `json:"critical,omitempty"`
}

// PrometheusSpec is the Prometheus HTTP API the queries go to.
// Credentials are named by environment variables of the airlock server.
type PrometheusSpec struct {
	URL              string `json:"url"`
	BearerTokenEnv   string `json:"bearerTokenEnv,omitempty"`
	BasicUserEnv     string `json:"basicUserEnv,omitempty"`
	BasicPasswordEnv string `json:"basicPasswordEnv,omitempty"`
	Timeout          string `json:"timeout,omitempty"`
}

// QuerySpec is a PromQL query templated with {{app}}, {{environment}}
// and {{version}}; it is asked for the candidate and for the baseline at
// every look, and its values are compared like a built-in metric.
type QuerySpec struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

// ProbeSpec is a synthetic HTTP probe against the candidate: its URL and
// headers may hold {{app}}, {{environment}} and {{version}}, and on the
// local runtime {{listen}} (the router's address; send the header
// X-Airlock-Version: {{version}} to reach the candidate).
type ProbeSpec struct {
	Name         string            `json:"name"`
	URL          string            `json:"url"`
	Method       string            `json:"method,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	ExpectStatus []string          `json:"expectStatus,omitempty"`
	BodyContains string            `json:"bodyContains,omitempty"`
	BodyRegex    string            `json:"bodyRegex,omitempty"`
	Timeout      string            `json:"timeout,omitempty"`
	Interval     string            `json:"interval,omitempty"`
}

// Limits of a template.
const (
	MaxQueries  = 20
	MaxProbes   = 20
	MaxLogLines = 100000
)

func f(v float64) *float64 { return &v }

// DefaultTemplate is the built-in template: the seeds' trigger table.
func DefaultTemplate() TemplateSpec {
	return TemplateSpec{
		Description: "the seeds' default triggers: error rate, latency p99, health checks, synthetic monitor, business metric",
		Triggers: []application.Trigger{
			{Name: "error-rate", Metric: application.MetricErrorRate, Above: &application.Threshold{Points: f(5)}, For: "5m", Action: application.ActionRollback},
			{Name: "latency-p99", Metric: application.MetricLatencyP99, Above: &application.Threshold{Percent: f(100)}, For: "5m", Action: application.ActionRollback},
			{Name: "health-checks", Metric: application.MetricUnhealthy, Above: &application.Threshold{Percent: f(25)}, For: "2m", Action: application.ActionRollback},
			{Name: "synthetic", Metric: application.MetricProbes, Failures: 2, Action: application.ActionRollback, Confirm: true},
			{Name: "business", Metric: "query:business", Below: &application.Threshold{Percent: f(20)}, For: "10m", Action: application.ActionPause},
		},
	}
}

// Config is a template resolved for one rollout: durations parsed, every
// default filled in, the application's triggers merged.
type Config struct {
	Template        string // the template's name ("" for the built-in default)
	Interval        time.Duration
	Window          time.Duration
	Soak            time.Duration
	MinRequests     int
	MaxSignalErrors int
	MaxExtensions   int
	Triggers        []Trigger
	Test            string
	Block           time.Duration
	Alpha           float64
	ErrorAction     string
	Confidence      float64
	Tolerance       float64
	Band            stats.Band
	Pass, Marginal  float64
	Metrics         []Metric
	Groups          map[string]float64
	Logs            LogsSpec
	Prometheus      *signals.PrometheusConfig
	Queries         []signals.QueryConfig
	Probes          []signals.ProbeConfig
}

// Trigger is a parsed trigger.
type Trigger struct {
	application.Trigger
	Hold time.Duration
}

// Metric is one metric the judge compares.
type Metric struct {
	Name      string
	Direction string
	Group     string
	Critical  bool
}

// Register adds the AnalysisTemplate kind to s.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:        Kind,
		Plural:      "analysistemplates",
		Aliases:     []string{"analysistemplate", "at"},
		Declarative: true,
		NewSpec:     func() any { return &TemplateSpec{} },
		Validate: func(obj *resource.Object, spec any) error {
			t, ok := spec.(*TemplateSpec)
			if !ok {
				return fmt.Errorf("analysis: spec has type %T, want *analysis.TemplateSpec", spec)
			}
			_, err := Resolve(obj.Metadata.Name, *t, nil)
			return err
		},
	})
}

func dur(path, s string, def, lo, hi time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, resource.Errorf(path, "%q is not a duration; write e.g. 10s or 1m", s)
	}
	if d < lo || d > hi {
		return 0, resource.Errorf(path, "%s is outside %s to %s", s, lo, hi)
	}
	return d, nil
}

// Resolve checks a template and returns its configuration with app's
// triggers merged in (app may be nil). Errors are *resource.PathError.
func Resolve(name string, t TemplateSpec, app *application.Analysis) (Config, error) {
	c := Config{Template: name, Logs: t.Logs}
	var err error
	if c.Interval, err = dur("spec.interval", t.Interval, 10*time.Second, time.Second, 5*time.Minute); err != nil {
		return c, err
	}
	if c.Window, err = dur("spec.window", t.Window, time.Minute, time.Second, time.Hour); err != nil {
		return c, err
	}
	if c.Soak, err = dur("spec.soak", t.Soak, time.Minute, 0, 24*time.Hour); err != nil {
		return c, err
	}
	c.MinRequests = cmpOr(t.MinRequests, 50)
	c.MaxSignalErrors = cmpOr(t.MaxSignalErrors, signals.DefaultErrorLimit)
	c.MaxExtensions = 1
	if t.MaxExtensions != nil {
		c.MaxExtensions = *t.MaxExtensions
	}
	switch {
	case t.MinRequests < 0 || t.MinRequests > 1e9:
		return c, resource.Errorf("spec.minRequests", "minRequests must be between 1 and 1e9, got %d", t.MinRequests)
	case t.MaxSignalErrors < 0 || t.MaxSignalErrors > 100:
		return c, resource.Errorf("spec.maxSignalErrors", "maxSignalErrors must be between 1 and 100, got %d", t.MaxSignalErrors)
	case c.MaxExtensions < 0 || c.MaxExtensions > 10:
		return c, resource.Errorf("spec.maxExtensions", "maxExtensions must be between 0 and 10, got %d", c.MaxExtensions)
	case t.Logs.Lines < 0 || t.Logs.Lines > MaxLogLines:
		return c, resource.Errorf("spec.logs.lines", "lines must be between 1 and %d, got %d", MaxLogLines, t.Logs.Lines)
	}
	if c.Logs.Lines == 0 {
		c.Logs.Lines = 2000
	}
	if err := judgeConfig(&c, t.Judge); err != nil {
		return c, err
	}
	if err := sources(&c, t); err != nil {
		return c, err
	}
	if err := application.ValidateTriggers("spec.triggers", t.Triggers); err != nil {
		return c, err
	}
	triggers := slices.Clone(t.Triggers)
	if t.Triggers == nil { // omitted: the seeds' table; an empty list means none
		triggers = DefaultTemplate().Triggers
	}
	if app != nil {
		for _, at := range app.Triggers {
			i := slices.IndexFunc(triggers, func(x application.Trigger) bool { return x.Name == at.Name })
			if i < 0 {
				triggers = append(triggers, at)
				continue
			}
			if at.Disabled && at.Metric == "" {
				triggers[i].Disabled = true
				continue
			}
			triggers[i] = at
		}
	}
	for _, tr := range triggers {
		if tr.Disabled {
			continue
		}
		hold, _ := application.ParseAnalysisDuration(tr.For)
		c.Triggers = append(c.Triggers, Trigger{Trigger: tr, Hold: hold})
	}
	return c, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func judgeConfig(c *Config, j JudgeSpec) error {
	c.Test, c.Alpha, c.ErrorAction = j.Test, j.Alpha, j.ErrorAction
	c.Confidence, c.Tolerance, c.Pass, c.Marginal = j.Confidence, j.Tolerance, j.Pass, j.Marginal
	switch c.Test {
	case "", TestRobust:
		c.Test = TestRobust
		if c.Alpha == 0 {
			c.Alpha = stats.DefaultRobustAlpha
		}
	case TestMixture:
		if c.Alpha == 0 {
			c.Alpha = stats.DefaultAlpha
		}
		if j.Block != "" {
			return resource.Errorf("spec.judge.block", "block applies to the robust test only")
		}
	default:
		return resource.Errorf("spec.judge.test", "test %q is not robust or mixture", c.Test)
	}
	var err error
	if c.Block, err = dur("spec.judge.block", j.Block, stats.DefaultRobustBlock, 100*time.Millisecond, time.Minute); err != nil {
		return err
	}
	if c.ErrorAction == "" {
		c.ErrorAction = application.ActionRollbackCanary
	}
	if c.Confidence == 0 {
		c.Confidence = 0.98
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.25
	}
	if c.Pass == 0 {
		c.Pass = 95
	}
	if c.Marginal == 0 {
		c.Marginal = 75
	}
	switch {
	case !(c.Alpha > 0 && c.Alpha < 0.5):
		return resource.Errorf("spec.judge.alpha", "alpha %v must be between 0 and 0.5 (exclusive)", c.Alpha)
	case !slices.Contains(application.Actions[2:], c.ErrorAction):
		return resource.Errorf("spec.judge.errorAction", "errorAction %q is not one of %s", c.ErrorAction, strings.Join(application.Actions[2:], ", "))
	case !(c.Confidence >= 0.5 && c.Confidence < 1):
		return resource.Errorf("spec.judge.confidence", "confidence %v must be in [0.5, 1)", c.Confidence)
	case !(c.Tolerance >= 0 && c.Tolerance <= 10):
		return resource.Errorf("spec.judge.tolerance", "tolerance %v must be between 0 and 10", c.Tolerance)
	case !(c.Pass > 0 && c.Pass <= 100), !(c.Marginal >= 0 && c.Marginal <= c.Pass):
		return resource.Errorf("spec.judge", "need 0 <= marginal (%v) <= pass (%v) <= 100", c.Marginal, c.Pass)
	}
	switch j.Band {
	case "", "baseline":
		c.Band = stats.BandBaseline
	case "estimate":
		c.Band = stats.BandEstimate
	default:
		return resource.Errorf("spec.judge.band", "band %q is not baseline or estimate", j.Band)
	}
	c.Groups = map[string]float64{}
	for g, w := range j.Groups {
		if err := resource.ValidateName(g); err != nil {
			return resource.Errorf("spec.judge.groups", "group %v", err)
		}
		if !(w > 0 && w <= 1000) || math.IsNaN(w) {
			return resource.Errorf("spec.judge.groups."+g, "weight %v must be above 0 and at most 1000", w)
		}
		c.Groups[g] = w
	}
	return nil
}

// BuiltinMetrics are the metrics the judge compares without a query.
var BuiltinMetrics = []Metric{
	{Name: "error-rate", Direction: "increase", Group: "errors", Critical: true},
	{Name: "latency", Direction: "increase", Group: "latency"},
}

func sources(c *Config, t TemplateSpec) error {
	if p := t.Prometheus; p != nil {
		to, err := dur("spec.prometheus.timeout", p.Timeout, signals.DefaultTimeout, 100*time.Millisecond, time.Minute)
		if err != nil {
			return err
		}
		pc := signals.PrometheusConfig{URL: p.URL, BearerTokenEnv: p.BearerTokenEnv, BasicUserEnv: p.BasicUserEnv, BasicPasswordEnv: p.BasicPasswordEnv, Timeout: to}
		if err := pc.Validate("spec.prometheus"); err != nil {
			return pathErr(err)
		}
		c.Prometheus = &pc
	}
	if len(t.Queries) > MaxQueries {
		return resource.Errorf("spec.queries", "%d queries; at most %d", len(t.Queries), MaxQueries)
	}
	if len(t.Queries) > 0 && c.Prometheus == nil {
		return resource.Errorf("spec.prometheus", "queries need a prometheus (url, and the credentials' environment variables)")
	}
	metrics := slices.Clone(BuiltinMetrics)
	for i, q := range t.Queries {
		path := fmt.Sprintf("spec.queries[%d]", i)
		if err := resource.ValidateName(q.Name); err != nil {
			return resource.Errorf(path+".name", "query %v", err)
		}
		if slices.ContainsFunc(metrics, func(m Metric) bool { return m.Name == q.Name }) {
			return resource.Errorf(path+".name", "metric %q is declared twice", q.Name)
		}
		qc := signals.QueryConfig{Name: q.Name, Query: q.Query}
		if err := qc.Validate(path); err != nil {
			return pathErr(err)
		}
		c.Queries = append(c.Queries, qc)
		metrics = append(metrics, Metric{Name: q.Name, Direction: "increase", Group: q.Name})
	}
	for i, m := range t.Judge.Metrics {
		path := fmt.Sprintf("spec.judge.metrics[%d]", i)
		j := slices.IndexFunc(metrics, func(x Metric) bool { return x.Name == m.Name })
		if j < 0 {
			return resource.Errorf(path+".name", "metric %q is neither error-rate, latency nor a query's name", m.Name)
		}
		if m.Disabled {
			metrics = slices.Delete(metrics, j, j+1)
			continue
		}
		if m.Direction != "" {
			if !slices.Contains([]string{"increase", "decrease", "either"}, m.Direction) {
				return resource.Errorf(path+".direction", "direction %q is not increase, decrease or either", m.Direction)
			}
			metrics[j].Direction = m.Direction
		}
		if m.Group != "" {
			if err := resource.ValidateName(m.Group); err != nil {
				return resource.Errorf(path+".group", "group %v", err)
			}
			metrics[j].Group = m.Group
		}
		if m.Critical != nil {
			metrics[j].Critical = *m.Critical
		}
	}
	c.Metrics = metrics
	if len(t.Probes) > MaxProbes {
		return resource.Errorf("spec.probes", "%d probes; at most %d", len(t.Probes), MaxProbes)
	}
	for i, p := range t.Probes {
		path := fmt.Sprintf("spec.probes[%d]", i)
		to, err := dur(path+".timeout", p.Timeout, signals.DefaultTimeout, 100*time.Millisecond, time.Minute)
		if err != nil {
			return err
		}
		iv, err := dur(path+".interval", p.Interval, signals.DefaultProbeInterval, time.Second, time.Hour)
		if err != nil {
			return err
		}
		url := strings.ReplaceAll(p.URL, "{{listen}}", "listen.invalid") // checked with a stand-in address
		pc := signals.ProbeConfig{Name: p.Name, Method: p.Method, URL: url, Headers: p.Headers, ExpectStatus: p.ExpectStatus, BodyContains: p.BodyContains, BodyRegex: p.BodyRegex, Timeout: to, Interval: iv}
		if err := pc.Validate(path); err != nil {
			return pathErr(err)
		}
		if slices.ContainsFunc(c.Probes, func(x signals.ProbeConfig) bool { return x.Name == p.Name }) {
			return resource.Errorf(path+".name", "probe %q is declared twice", p.Name)
		}
		if len(p.Headers) > 20 {
			return resource.Errorf(path+".headers", "at most 20 headers")
		}
		pc.URL = p.URL
		c.Probes = append(c.Probes, pc)
	}
	return nil
}

// pathErr turns a signals validation error ("path.field: message") into
// a *resource.PathError.
func pathErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	if p, m, ok := strings.Cut(msg, ": "); ok {
		return resource.Errorf(p, "%s", m)
	}
	return errors.New(msg)
}

// Load resolves the configuration of an application's analysis in an
// environment: its template (the declared one, or the built-in default
// for "" and "default" when none is declared) with its triggers merged.
func Load(ctx context.Context, r store.Reader, a application.Analysis) (Config, int64, error) {
	name := a.Template
	if name == "" {
		name = DefaultName
	}
	o, err := r.Get(ctx, Kind, name)
	switch {
	case errors.Is(err, store.ErrNotFound) && name == DefaultName:
		c, err := Resolve("", DefaultTemplate(), &a)
		return c, 0, err
	case err != nil:
		return Config{}, 0, fmt.Errorf("analysis template %s: %w", name, err)
	}
	var t TemplateSpec
	if err := o.DecodeSpec(&t); err != nil {
		return Config{}, 0, fmt.Errorf("decode %s: %w", o.Ref(), err)
	}
	c, err := Resolve(name, t, &a)
	return c, o.Metadata.Revision, err
}
