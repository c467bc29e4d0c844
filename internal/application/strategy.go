package application

import (
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Strategy types.
const (
	BlueGreen = "blueGreen"
	Canary    = "canary"
	Rolling   = "rolling"
)

// Strategies lists the strategy types.
var Strategies = []string{BlueGreen, Canary, Rolling}

// Defaults of a strategy.
const (
	DefaultStrategy         = Canary
	DefaultSoak             = time.Minute
	DefaultRollbackWindow   = 10 * time.Minute
	DefaultProgressDeadline = 2 * time.Minute
	// ManualPause is a canary step's pause that lasts until someone runs
	// airlock rollout resume (or promote).
	ManualPause = "manual"
)

// DefaultCanarySteps are the seeds' canary weights, each soaked for
// DefaultSoak.
var DefaultCanarySteps = []CanaryStep{{Weight: 5}, {Weight: 10}, {Weight: 25}, {Weight: 50}, {Weight: 100}}

// Strategy is how a new version replaces the running one in an
// environment.
type Strategy struct {
	// Type is blueGreen, canary or rolling (default canary).
	Type string `json:"type,omitempty"`
	// Steps are a canary's traffic weights in percent, rising to 100, each
	// held for its pause (a duration, or "manual" until resumed; default
	// 1m). Default 5, 10, 25, 50, 100.
	Steps []CanaryStep `json:"steps,omitempty"`
	// MaxSurge is how many instances of the new version a rolling update
	// starts above the replica count at a time (default 1); MaxUnavailable
	// how many instances may be missing meanwhile (default 0).
	MaxSurge       *int `json:"maxSurge,omitempty"`
	MaxUnavailable *int `json:"maxUnavailable,omitempty"`
	// RollbackWindow is how long blue-green keeps the old version running
	// after the switch, ready to take the traffic back (default 10m).
	RollbackWindow string `json:"rollbackWindow,omitempty"`
	// SmokePath is requested on the new version before blue-green switches
	// traffic to it (default: the health path); a 2xx answer passes.
	SmokePath string `json:"smokePath,omitempty"`
	// ProgressDeadline is how long a new version's instances may take to
	// become healthy before the rollout fails (default 2m).
	ProgressDeadline string `json:"progressDeadline,omitempty"`
}

// CanaryStep is one weight of a canary and how long it soaks.
type CanaryStep struct {
	Weight int    `json:"weight"`
	Pause  string `json:"pause,omitempty"`
}

// PauseFor returns the step's soak; manual is true for a manual pause.
func (c CanaryStep) PauseFor() (d time.Duration, manual bool) {
	switch c.Pause {
	case "":
		return DefaultSoak, false
	case ManualPause:
		return 0, true
	}
	d, _ = time.ParseDuration(c.Pause)
	return d, false
}

// Resolved returns the strategy with every default filled in.
func (s Strategy) Resolved() Strategy {
	if s.Type == "" {
		s.Type = DefaultStrategy
	}
	if s.Type == Canary && len(s.Steps) == 0 {
		s.Steps = append([]CanaryStep(nil), DefaultCanarySteps...)
	}
	if s.MaxSurge == nil {
		one := 1
		s.MaxSurge = &one
	}
	if s.MaxUnavailable == nil {
		zero := 0
		s.MaxUnavailable = &zero
	}
	if s.RollbackWindow == "" {
		s.RollbackWindow = DefaultRollbackWindow.String()
	}
	if s.ProgressDeadline == "" {
		s.ProgressDeadline = DefaultProgressDeadline.String()
	}
	return s
}

// Durations returns the strategy's rollback window and progress deadline;
// s must be resolved and valid.
func (s Strategy) Durations() (rollbackWindow, progressDeadline time.Duration) {
	rollbackWindow, _ = time.ParseDuration(s.RollbackWindow)
	progressDeadline, _ = time.ParseDuration(s.ProgressDeadline)
	return rollbackWindow, progressDeadline
}

// ValidateStrategy checks a strategy; path is its field path.
func ValidateStrategy(path string, s Strategy) error {
	switch s.Type {
	case "", BlueGreen, Canary, Rolling:
	default:
		return resource.Errorf(path+".type", "strategy %q is not one of %s", s.Type, strings.Join(Strategies, ", "))
	}
	if len(s.Steps) > 0 && s.Type != Canary && s.Type != "" {
		return resource.Errorf(path+".steps", "steps apply to a canary, not to %s", s.Type)
	}
	if len(s.Steps) > 20 {
		return resource.Errorf(path+".steps", "at most 20 canary steps, got %d", len(s.Steps))
	}
	prev := 0
	for i, st := range s.Steps {
		p := fmt.Sprintf("%s.steps[%d]", path, i)
		if st.Weight <= prev || st.Weight > 100 {
			return resource.Errorf(p+".weight", "canary weights must rise from above 0 to at most 100, got %d after %d", st.Weight, prev)
		}
		prev = st.Weight
		if st.Pause != "" && st.Pause != ManualPause {
			d, err := time.ParseDuration(st.Pause)
			if err != nil || d < 0 || d > 24*time.Hour {
				return resource.Errorf(p+".pause", "pause %q must be a duration up to 24h (e.g. 2m) or %q", st.Pause, ManualPause)
			}
		}
	}
	if len(s.Steps) > 0 && prev != 100 {
		return resource.Errorf(path+".steps", "the last canary step must reach weight 100, got %d", prev)
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"maxSurge", s.MaxSurge}, {"maxUnavailable", s.MaxUnavailable}} {
		if f.v != nil && (*f.v < 0 || *f.v > 100) {
			return resource.Errorf(path+"."+f.name, "%s must be from 0 to 100, got %d", f.name, *f.v)
		}
	}
	if s.MaxSurge != nil && s.MaxUnavailable != nil && *s.MaxSurge == 0 && *s.MaxUnavailable == 0 {
		return resource.Errorf(path+".maxSurge", "maxSurge and maxUnavailable cannot both be 0: a rolling update could never replace an instance")
	}
	for _, f := range []struct{ name, v string }{{"rollbackWindow", s.RollbackWindow}, {"progressDeadline", s.ProgressDeadline}} {
		if f.v == "" {
			continue
		}
		if d, err := time.ParseDuration(f.v); err != nil || d <= 0 || d > 24*time.Hour {
			return resource.Errorf(path+"."+f.name, "%s %q must be a duration above 0 and up to 24h, e.g. 10m", f.name, f.v)
		}
	}
	if s.SmokePath != "" && !strings.HasPrefix(s.SmokePath, "/") {
		return resource.Errorf(path+".smokePath", "smokePath %q must start with /", s.SmokePath)
	}
	return nil
}
