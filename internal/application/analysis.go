package application

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Analysis is how airlock judges a new version of the application in one
// environment while it rolls out (canary and rolling strategies): the
// AnalysisTemplate to use, and triggers that replace the template's
// triggers of the same name or add to them, so every threshold can be set
// per application and environment.
type Analysis struct {
	// Template names an AnalysisTemplate. Empty or "default" means the one
	// named default when one is declared, else the built-in default (the
	// seeds' trigger table).
	Template string    `json:"template,omitempty"`
	Triggers []Trigger `json:"triggers,omitempty"`
}

// Trigger is one rule of the analysis: a metric, a threshold relative to
// the baseline (the stable version measured over the same period) or to
// a fixed value, how long it must hold, and the action it recommends.
type Trigger struct {
	Name string `json:"name"`
	// Metric is error-rate, latency-p99, unhealthy-instances, probes (any
	// synthetic probe), probe:NAME or query:NAME (a Prometheus query of
	// the template).
	Metric string     `json:"metric"`
	Above  *Threshold `json:"above,omitempty"`
	Below  *Threshold `json:"below,omitempty"`
	// For is how long the condition must hold before the trigger fires
	// (a duration; default at once).
	For string `json:"for,omitempty"`
	// Failures, for probe metrics: the trigger fires after more than this
	// many consecutive failed probes.
	Failures int `json:"failures,omitempty"`
	// Action is what the trigger recommends when it fires: one of
	// Actions.
	Action string `json:"action"`
	// Confirm makes the action wait for a person (airlock verdict accept)
	// even where the environment's policy would run it automatically: an
	// alert with a prepared rollback.
	Confirm bool `json:"confirm,omitempty"`
	// Disabled switches off a trigger the template declares.
	Disabled bool `json:"disabled,omitempty"`
}

// Threshold is a limit: Points are percentage points over (or under) the
// baseline's value, Percent a relative change from the baseline's value,
// Value a fixed value. Exactly one is set.
type Threshold struct {
	Points  *float64 `json:"points,omitempty"`
	Percent *float64 `json:"percent,omitempty"`
	Value   *float64 `json:"value,omitempty"`
}

// The actions of the analysis, from mildest to strongest.
const (
	ActionContinue       = "continue"
	ActionExtend         = "extend"
	ActionPause          = "pause"
	ActionRollbackCanary = "rollback-canary"
	ActionRollback       = "rollback"
)

// Actions lists the analysis's actions, mildest first.
var Actions = []string{ActionContinue, ActionExtend, ActionPause, ActionRollbackCanary, ActionRollback}

// Built-in trigger metrics; probe:NAME and query:NAME name a template's
// probe or query.
const (
	MetricErrorRate  = "error-rate"
	MetricLatencyP99 = "latency-p99"
	MetricUnhealthy  = "unhealthy-instances"
	MetricProbes     = "probes"
)

// MaxTriggers bounds the triggers of one template or application.
const MaxTriggers = 50

// ParseAnalysisDuration parses a trigger or template duration: a Go
// duration between 0 and 24h.
func ParseAnalysisDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write e.g. 30s, 5m or 1h", s)
	}
	if d < 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("%s is outside 0 to 24h", s)
	}
	return d, nil
}

// ValidateTriggers checks triggers at path (e.g. spec.triggers) and
// reports the first problem as a *resource.PathError.
func ValidateTriggers(path string, ts []Trigger) error {
	if len(ts) > MaxTriggers {
		return resource.Errorf(path, "%d triggers; at most %d are allowed", len(ts), MaxTriggers)
	}
	seen := map[string]bool{}
	for i, t := range ts {
		at := fmt.Sprintf("%s[%d]", path, i)
		if err := resource.ValidateName(t.Name); err != nil {
			return resource.Errorf(at+".name", "trigger %v", err)
		}
		if seen[t.Name] {
			return resource.Errorf(at+".name", "trigger %q is declared twice", t.Name)
		}
		seen[t.Name] = true
		if t.Disabled && t.Metric == "" {
			continue // switches off the template's trigger of that name
		}
		if err := validateMetric(t.Metric); err != nil {
			return resource.Errorf(at+".metric", "%v", err)
		}
		if !slices.Contains(Actions, t.Action) || t.Action == ActionContinue {
			return resource.Errorf(at+".action", "action %q is not one of %s", t.Action, strings.Join(Actions[1:], ", "))
		}
		if _, err := ParseAnalysisDuration(t.For); err != nil {
			return resource.Errorf(at+".for", "%v", err)
		}
		probe := t.Metric == MetricProbes || strings.HasPrefix(t.Metric, "probe:")
		switch {
		case probe && (t.Above != nil || t.Below != nil):
			return resource.Errorf(at, "a probe trigger counts consecutive failures: set failures, not above or below")
		case probe && (t.Failures < 0 || t.Failures > 100):
			return resource.Errorf(at+".failures", "failures must be between 0 and 100, got %d", t.Failures)
		case !probe && t.Failures != 0:
			return resource.Errorf(at+".failures", "failures applies to probe metrics only")
		case !probe && (t.Above == nil) == (t.Below == nil):
			return resource.Errorf(at, "set exactly one of above or below")
		}
		for _, th := range []struct {
			name string
			th   *Threshold
		}{{"above", t.Above}, {"below", t.Below}} {
			if th.th == nil {
				continue
			}
			if err := validateThreshold(t.Metric, *th.th); err != nil {
				return resource.Errorf(at+"."+th.name, "%v", err)
			}
		}
	}
	return nil
}

func validateMetric(m string) error {
	switch m {
	case MetricErrorRate, MetricLatencyP99, MetricUnhealthy, MetricProbes:
		return nil
	}
	for _, p := range []string{"probe:", "query:"} {
		if name, ok := strings.CutPrefix(m, p); ok {
			if err := resource.ValidateName(name); err != nil {
				return fmt.Errorf("%s%v", p, err)
			}
			return nil
		}
	}
	return fmt.Errorf("metric %q is not one of %s, %s, %s, %s, probe:NAME or query:NAME", m, MetricErrorRate, MetricLatencyP99, MetricUnhealthy, MetricProbes)
}

func validateThreshold(metric string, th Threshold) error {
	n := 0
	for _, v := range []*float64{th.Points, th.Percent, th.Value} {
		if v == nil {
			continue
		}
		n++
		if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > 1e12 {
			return fmt.Errorf("%v is not a number between 0 and 1e12", *v)
		}
	}
	switch {
	case n != 1:
		return fmt.Errorf("set exactly one of points, percent or value")
	case th.Points != nil && metric != MetricErrorRate:
		return fmt.Errorf("points (percentage points over the baseline) apply to error-rate only; use percent or value")
	case metric == MetricUnhealthy && th.Percent == nil:
		return fmt.Errorf("unhealthy-instances takes percent: the share of the candidate's instances failing health checks")
	}
	return nil
}

// ValidateAnalysis checks an application's analysis settings at path.
func ValidateAnalysis(path string, a Analysis) error {
	if a.Template != "" {
		if err := resource.ValidateName(a.Template); err != nil {
			return resource.Errorf(path+".template", "template %v", err)
		}
	}
	return ValidateTriggers(path+".triggers", a.Triggers)
}
