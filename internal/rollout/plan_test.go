package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func spec(typ string, stable bool) Spec {
	s := Spec{App: "shop", Environment: "prod", Replicas: 3,
		Candidate: Version{Version: "1.5.0", Release: "shop-1.5.0", Digest: "sha256:bb"},
		Strategy:  application.Strategy{Type: typ}.Resolved()}
	if stable {
		s.Stable = &Version{Version: "1.4.0", Release: "shop-1.4.0", Digest: "sha256:aa"}
	}
	return s
}

// sim is a runtime that brings up what the plan asks for: every desired
// instance is healthy after startup, unless the version is broken.
type sim struct {
	t       *testing.T
	spec    Spec
	st      Status
	now     time.Time
	startup time.Duration
	broken  bool   // the candidate never gets healthy
	crash   string // the candidate fails with this reason
	smoke   *bool
	since   map[string]time.Time // version → when its current replica count was asked for
	want    map[string]int
	before  map[string]int // healthy instances before the last scale-up
	stableN int            // stable instances healthy at the start
	trace   []string
}

func newSim(t *testing.T, s Spec) *sim {
	ok := true
	w := &sim{t: t, spec: s, now: t0, startup: 2 * time.Second, smoke: &ok, since: map[string]time.Time{}, want: map[string]int{}, before: map[string]int{}}
	if s.Stable != nil {
		w.want[s.Stable.Version], w.since[s.Stable.Version] = s.Replicas, t0.Add(-time.Hour)
	}
	return w
}

func (w *sim) healthy(v string) int {
	if w.now.Sub(w.since[v]) < w.startup {
		return min(w.before[v], w.want[v])
	}
	return w.want[v]
}

// scale asks the sim for n instances of v: new ones take startup to be
// healthy, the running ones stay healthy.
func (w *sim) scale(v string, n int) {
	if n == w.want[v] {
		return
	}
	if n > w.want[v] {
		w.before[v], w.since[v] = w.healthy(v), w.now
	}
	w.want[v] = n
}

func (w *sim) observe() Observation {
	var o Observation
	c := w.spec.Candidate.Version
	o.Candidate = VersionState{Running: w.want[c], Healthy: w.healthy(c)}
	if w.broken {
		o.Candidate.Healthy = 0
	}
	if w.crash != "" {
		o.Candidate.Failed, o.Candidate.Reason = true, w.crash
	}
	if o.Candidate.Healthy > 0 {
		o.Candidate.SmokeOK = w.smoke
	}
	if w.spec.Stable != nil {
		o.Stable = VersionState{Running: w.want[w.spec.Stable.Version], Healthy: w.healthy(w.spec.Stable.Version)}
	}
	return o
}

// run plans until the rollout is final and the runtime settled, or limit
// passes; it checks the invariants at every step.
func (w *sim) run(limit time.Duration) Result {
	w.t.Helper()
	var r Result
	end := w.now.Add(limit)
	for w.now.Before(end) {
		obs := w.observe()
		r = Plan(w.spec, w.st, obs, w.now)
		w.check(r, obs)
		w.st = r.Status
		w.apply(r.Desired)
		w.trace = append(w.trace, fmt.Sprintf("%s %s w=%d %v", w.now.Sub(t0), r.Status.Phase, r.Status.Weight, r.Desired.Versions))
		if !r.Status.Phase.Active() && r.Requeue == 0 {
			return r
		}
		step := r.Requeue
		if step <= 0 || step > 5*time.Second {
			step = 5 * time.Second
		}
		w.now = w.now.Add(step)
	}
	return r
}

func (w *sim) apply(d Desired) {
	for _, v := range d.Versions {
		w.scale(v.Version.Version, v.Replicas)
	}
	for v := range w.want {
		if !hasVersion(d, v) {
			w.scale(v, 0)
		}
	}
}

func hasVersion(d Desired, v string) bool {
	for _, x := range d.Versions {
		if x.Version.Version == v {
			return true
		}
	}
	return false
}

// check: weights sum to 100 over versions with replicas (or all 0 when
// none), and traffic never goes to a version that has no healthy instance
// while another one has.
func (w *sim) check(r Result, obs Observation) {
	w.t.Helper()
	sum := 0
	for _, v := range r.Desired.Versions {
		if v.Weight < 0 || v.Weight > 100 {
			w.t.Fatalf("weight %d for %s", v.Weight, v.Version.Version)
		}
		sum += v.Weight
	}
	if len(r.Desired.Versions) > 0 && sum != 100 && sum != 0 {
		w.t.Fatalf("weights sum to %d: %v\n%s", sum, r.Desired.Versions, strings.Join(w.trace, "\n"))
	}
	if w.spec.Stable != nil && r.Status.Weight > 0 && obs.Candidate.Healthy == 0 && r.Status.Phase.Active() {
		w.t.Fatalf("%d%% of traffic sent to %s with no healthy instance\n%s", r.Status.Weight, w.spec.Candidate.Version, strings.Join(w.trace, "\n"))
	}
}

func TestBlueGreen(t *testing.T) {
	w := newSim(t, spec(application.BlueGreen, true))
	r := w.run(time.Minute)
	if r.Status.Phase != Succeeded || r.Status.Weight != 100 || r.Status.SwitchedAt == nil || r.Status.SwitchedAt.Sub(t0) > 5*time.Second {
		t.Fatalf("blue-green: %+v\n%s", r.Status, strings.Join(w.trace, "\n"))
	}
	// The old version keeps running, without traffic, for the rollback window.
	if len(r.Desired.Versions) != 2 || r.Desired.Versions[1].Weight != 0 || r.Desired.Versions[1].Replicas != 3 || r.Requeue <= 0 {
		t.Fatalf("during the rollback window: %+v requeue %s", r.Desired.Versions, r.Requeue)
	}
	// A rollback inside the window puts traffic back at once.
	w.st.RollbackReason = "checkout errors"
	r = Plan(w.spec, w.st, w.observe(), w.now)
	if r.Status.Phase != RolledBack || len(r.Desired.Versions) != 1 || r.Desired.Versions[0].Version.Version != "1.4.0" || r.Desired.Versions[0].Weight != 100 {
		t.Fatalf("rollback in the window: %+v %+v", r.Status, r.Desired.Versions)
	}
}

func TestBlueGreenStopsTheOldVersionAfterTheWindow(t *testing.T) {
	w := newSim(t, spec(application.BlueGreen, true))
	w.run(time.Minute)
	w.now = w.now.Add(11 * time.Minute)
	r := Plan(w.spec, w.st, w.observe(), w.now)
	if len(r.Desired.Versions) != 1 || r.Desired.Versions[0].Version.Version != "1.5.0" || r.Requeue != 0 {
		t.Fatalf("after the window: %+v requeue %s", r.Desired.Versions, r.Requeue)
	}
	w.st.RollbackReason = "too late"
	if r := Plan(w.spec, w.st, w.observe(), w.now); r.Status.Phase != Succeeded {
		t.Fatalf("a rollback after the window is not done in place: %s", r.Status.Phase)
	}
}

func TestBlueGreenSmokeFailure(t *testing.T) {
	w := newSim(t, spec(application.BlueGreen, true))
	bad := false
	w.smoke = &bad
	r := w.run(time.Minute)
	if r.Status.Phase != Failed || !strings.Contains(r.Status.Message, "failed its smoke check") || r.Status.Weight != 0 {
		t.Fatalf("smoke failure: %+v", r.Status)
	}
	if len(r.Desired.Versions) != 1 || r.Desired.Versions[0].Version.Version != "1.4.0" {
		t.Fatalf("after a smoke failure: %+v", r.Desired.Versions)
	}
}

func TestCanaryStepsAndSoaks(t *testing.T) {
	w := newSim(t, spec(application.Canary, true))
	r := w.run(time.Hour)
	if r.Status.Phase != Succeeded || r.Status.Weight != 100 || len(r.Desired.Versions) != 1 {
		t.Fatalf("canary: %+v\n%s", r.Status, strings.Join(w.trace, "\n"))
	}
	var weights []string
	for _, e := range r.Status.Events {
		if strings.HasPrefix(e.Message, "step ") {
			weights = append(weights, e.Message[:strings.Index(e.Message, "%")+1])
		}
	}
	if got := strings.Join(weights, ","); got != "step 1 of 5: 5%,step 2 of 5: 10%,step 3 of 5: 25%,step 4 of 5: 50%,step 5 of 5: 100%" {
		t.Fatalf("steps: %s", got)
	}
	// Four soaks of a minute each, after a 2 s start.
	if d := r.Status.FinishedAt.Sub(t0); d < 4*time.Minute || d > 4*time.Minute+10*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestCanaryManualPauseResumeAndPromote(t *testing.T) {
	s := spec(application.Canary, true)
	s.Strategy.Steps = []application.CanaryStep{{Weight: 20, Pause: application.ManualPause}, {Weight: 50, Pause: "10s"}, {Weight: 100}}
	w := newSim(t, s)
	r := w.run(time.Minute)
	if r.Status.Phase != Paused || r.Status.Weight != 20 {
		t.Fatalf("manual pause: %+v", r.Status)
	}
	w.now = w.now.Add(time.Hour) // a pause holds however long
	if r = Plan(w.spec, w.st, w.observe(), w.now); r.Status.Phase != Paused || r.Status.Weight != 20 || r.Desired.Versions[0].Weight != 20 {
		t.Fatalf("still paused: %+v", r.Status)
	}
	w.st.ResumeRequested = true
	r = w.run(time.Minute)
	if r.Status.Phase != Succeeded {
		t.Fatalf("after resume: %+v\n%s", r.Status, strings.Join(w.trace, "\n"))
	}

	// promote skips the remaining steps.
	w = newSim(t, s)
	w.run(10 * time.Second)
	w.st.PromoteRequested = true
	r = Plan(w.spec, w.st, w.observe(), w.now)
	if r.Status.Phase != Succeeded || r.Status.Weight != 100 {
		t.Fatalf("promote: %+v", r.Status)
	}
}

func TestPauseHoldsAnyStep(t *testing.T) {
	w := newSim(t, spec(application.Canary, true))
	w.run(70 * time.Second) // in step 2 (10%)
	w.st.PauseRequested = true
	r := Plan(w.spec, w.st, w.observe(), w.now)
	if r.Status.Phase != Paused || r.Status.Weight != 10 {
		t.Fatalf("pause: %+v", r.Status)
	}
	w.st = r.Status
	w.now = w.now.Add(time.Hour)
	if r := Plan(w.spec, w.st, w.observe(), w.now); r.Status.Weight != 10 || r.Status.Phase != Paused {
		t.Fatalf("paused an hour: %+v", r.Status)
	}
}

func TestCanaryAbortReturnsTrafficAtOnce(t *testing.T) {
	w := newSim(t, spec(application.Canary, true))
	w.run(150 * time.Second)
	if w.st.Weight == 0 {
		t.Fatal("no traffic on the canary yet")
	}
	w.st.AbortRequested = "error rate up"
	r := Plan(w.spec, w.st, w.observe(), w.now)
	if r.Status.Phase != Aborted || len(r.Desired.Versions) != 1 || r.Desired.Versions[0].Version.Version != "1.4.0" || r.Desired.Versions[0].Weight != 100 {
		t.Fatalf("abort: %+v %+v", r.Status, r.Desired.Versions)
	}
}

func TestBrokenCandidateFailsAtTheDeadline(t *testing.T) {
	for _, typ := range application.Strategies {
		t.Run(typ, func(t *testing.T) {
			w := newSim(t, spec(typ, true))
			w.broken = true
			r := w.run(10 * time.Minute)
			if r.Status.Phase != Failed || !strings.Contains(r.Status.Message, "0 of ") || !strings.Contains(r.Status.Message, "progress deadline") {
				t.Fatalf("%+v", r.Status)
			}
			if d := r.Status.FinishedAt.Sub(t0); d < 2*time.Minute || d > 2*time.Minute+5*time.Second {
				t.Fatalf("failed after %s", d)
			}
			if len(r.Desired.Versions) != 1 || r.Desired.Versions[0].Version.Version != "1.4.0" || r.Desired.Versions[0].Replicas != 3 {
				t.Fatalf("after the failure: %+v", r.Desired.Versions)
			}
		})
	}
}

func TestCrashingCandidateFailsAtOnce(t *testing.T) {
	w := newSim(t, spec(application.Canary, true))
	w.crash = "exit status 1 five times in a row: panic: config missing"
	r := w.run(time.Minute)
	if r.Status.Phase != Failed || !strings.Contains(r.Status.Message, "panic: config missing") || r.Status.FinishedAt.Sub(t0) > time.Second {
		t.Fatalf("%+v", r.Status)
	}
}

func TestRollingReplacesOneAtATime(t *testing.T) {
	w := newSim(t, spec(application.Rolling, true))
	maxTotal, minAvailable := 0, 100
	var r Result
	for w.now.Before(t0.Add(time.Minute)) {
		obs := w.observe()
		r = Plan(w.spec, w.st, obs, w.now)
		w.check(r, obs)
		total := 0
		for _, v := range r.Desired.Versions {
			total += v.Replicas
		}
		maxTotal = max(maxTotal, total)
		minAvailable = min(minAvailable, obs.Candidate.Healthy+obs.Stable.Healthy)
		w.st = r.Status
		w.apply(r.Desired)
		if !r.Status.Phase.Active() {
			break
		}
		w.now = w.now.Add(time.Second)
	}
	if r.Status.Phase != Succeeded || r.Status.Step != 3 {
		t.Fatalf("rolling: %+v", r.Status)
	}
	if maxTotal > 4 || minAvailable < 3 {
		t.Fatalf("maxSurge 1 / maxUnavailable 0 broken: at most %d instances, at least %d available", maxTotal, minAvailable)
	}
}

func TestFirstDeploy(t *testing.T) {
	w := newSim(t, spec(application.Canary, false))
	r := w.run(time.Minute)
	if r.Status.Phase != Succeeded || len(r.Desired.Versions) != 1 || r.Desired.Versions[0].Weight != 100 {
		t.Fatalf("first deploy: %+v %+v", r.Status, r.Desired.Versions)
	}
	w = newSim(t, spec(application.BlueGreen, false))
	w.crash = "digest mismatch"
	r = w.run(time.Minute)
	if r.Status.Phase != Failed || len(r.Desired.Versions) != 0 || !strings.Contains(r.Status.Message, "digest mismatch") {
		t.Fatalf("failed first deploy: %+v %+v", r.Status, r.Desired.Versions)
	}
}

func TestPlanIsPure(t *testing.T) {
	s := spec(application.Canary, true)
	st := Status{Phase: Progressing, Step: 2, Weight: 10, WaitingSince: t0, StepStartedAt: &t0, Events: []Event{{At: t0, Message: "x"}}}
	obs := Observation{Candidate: VersionState{Running: 3, Healthy: 3}, Stable: VersionState{Running: 3, Healthy: 3}}
	a := Plan(s, st, obs, t0.Add(2*time.Minute))
	b := Plan(s, st, obs, t0.Add(2*time.Minute))
	if fmt.Sprint(a) != fmt.Sprint(b) || len(st.Events) != 1 || st.Weight != 10 {
		t.Fatalf("Plan is not pure: %+v / %+v (input now %+v)", a, b, st)
	}
}
