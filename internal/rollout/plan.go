package rollout

import (
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
)

// Result is a plan: the rollout's next status, the state the runtime
// target is to reach, and when to plan again (0: only when something
// changes).
type Result struct {
	Status  Status
	Desired Desired
	Requeue time.Duration
}

// poll is how soon to look again while waiting on the runtime.
const poll = time.Second

// Plan decides a rollout's next step. It performs no I/O and reads the
// clock only through now: the same inputs give the same plan.
func Plan(spec Spec, st Status, obs Observation, now time.Time) Result {
	p := &planner{spec: spec, st: st, obs: obs, now: now}
	p.st.Events = append([]Event(nil), st.Events...)
	if p.st.Phase == "" {
		p.st.Phase, p.st.StartedAt, p.st.WaitingSince = Progressing, now, now
		if spec.Stable == nil {
			p.event("started: %s %s into %s (first deploy, %d instances, %s)", spec.App, spec.Candidate.Version, spec.Environment, spec.Replicas, spec.Strategy.Type)
		} else {
			p.event("started: %s %s replaces %s in %s (%d instances, %s)", spec.App, spec.Candidate.Version, spec.Stable.Version, spec.Environment, spec.Replicas, spec.Strategy.Type)
		}
	}
	for _, d := range obs.Drift {
		p.event("drift: %s", d)
	}
	p.requests()
	if p.st.Phase == Progressing {
		switch {
		case p.obs.Error != "":
			p.finish(Failed, "the runtime could not run %s %s: %s", spec.App, spec.Candidate.Version, p.obs.Error)
		case p.obs.Candidate.Failed:
			p.finish(Failed, "%s %s failed: %s", spec.App, spec.Candidate.Version, p.obs.Candidate.Reason)
		case spec.Stable == nil:
			p.firstDeploy()
		case spec.Strategy.Type == application.BlueGreen:
			p.blueGreen()
		case spec.Strategy.Type == application.Rolling:
			p.rolling()
		default:
			p.canary()
		}
	}
	if p.st.Phase == Paused {
		p.hold()
	}
	if !p.st.Phase.Active() {
		p.settle()
	}
	return Result{Status: p.st, Desired: p.desired, Requeue: p.requeue}
}

type planner struct {
	spec    Spec
	st      Status
	obs     Observation
	now     time.Time
	desired Desired
	requeue time.Duration
}

func (p *planner) event(format string, args ...any) {
	p.st.Message = fmt.Sprintf(format, args...)
	p.st.Events = append(p.st.Events, Event{At: p.now, Message: p.st.Message})
	if len(p.st.Events) > maxEvents {
		p.st.Events = p.st.Events[len(p.st.Events)-maxEvents:]
	}
}

func (p *planner) finish(phase Phase, format string, args ...any) {
	p.st.Phase = phase
	now := p.now
	p.st.FinishedAt = &now
	p.event(format, args...)
}

// requests applies what people asked for since the last plan.
func (p *planner) requests() {
	st := &p.st
	switch {
	case st.AbortRequested != "" && st.Phase.Active():
		p.finish(Aborted, "aborted: %s; traffic back on %s", st.AbortRequested, p.stableName())
	case st.RollbackReason != "" && st.Phase.Active():
		p.finish(RolledBack, "rolled back: %s; traffic back on %s", st.RollbackReason, p.stableName())
	case st.RollbackReason != "" && st.Phase == Succeeded && p.stableRunning():
		p.st.Phase, p.st.Weight = RolledBack, 0
		p.event("rolled back: %s; traffic back on %s at once (it was still running)", st.RollbackReason, p.stableName())
	}
	st.AbortRequested, st.RollbackReason = "", ""
	p.analysisRequest()
	if !st.Phase.Active() {
		st.PauseRequested, st.ResumeRequested, st.PromoteRequested = false, false, false
		return
	}
	if st.PauseRequested && st.Phase == Progressing {
		now := p.now
		st.Phase, st.PausedAt = Paused, &now
		p.event("paused at %d%% on %s %s", st.Weight, p.spec.App, p.spec.Candidate.Version)
	}
	if (st.ResumeRequested || st.PromoteRequested) && st.Phase == Paused {
		st.Phase, st.PausedAt, st.Resumed = Progressing, nil, true
		now := p.now
		st.StepStartedAt = &now // the soak starts again
		p.event("resumed at %d%%", st.Weight)
	}
	st.PauseRequested, st.ResumeRequested = false, false
}

// analysisRequest applies an action of the analysis (or of a person's
// decision on its verdict).
func (p *planner) analysisRequest() {
	req := p.st.AnalysisRequest
	p.st.AnalysisRequest = nil
	if req == nil || !p.st.Phase.Active() {
		return
	}
	a := p.st.Analysis
	if a == nil {
		a = &AnalysisStatus{}
		p.st.Analysis = a
	}
	current := req.Step == p.st.Step
	why := ""
	if req.Reason != "" {
		why = ": " + req.Reason
	}
	switch req.Action {
	case application.ActionRollback:
		a.Verdict, a.Action, a.Awaiting = req.Verdict, req.Action, ""
		p.finish(RolledBack, "rolled back by the analysis (verdict %s)%s; traffic back on %s", req.Verdict, why, p.stableName())
	case application.ActionRollbackCanary:
		a.Verdict, a.Action, a.Awaiting = req.Verdict, req.Action, ""
		p.finish(Failed, "canary rolled back by the analysis (verdict %s)%s; traffic back on %s", req.Verdict, why, p.stableName())
	case application.ActionPause:
		a.Verdict, a.Action = req.Verdict, req.Action
		if req.Reason == "" || p.st.Phase == Paused {
			break
		}
		now := p.now
		p.st.Phase, p.st.PausedAt = Paused, &now
		a.Awaiting = req.Verdict
		p.event("paused by the analysis at %d%% (verdict %s)%s; decide with airlock verdict accept|override %s", p.st.Weight, req.Verdict, why, req.Verdict)
	case application.ActionExtend:
		if !current {
			return
		}
		a.Verdict, a.Action, a.ExtendedUntil = req.Verdict, req.Action, req.ExtendedUntil
		if req.ExtendedUntil != nil {
			p.event("soak at %d%% extended until %s by the analysis (verdict %s)%s", p.st.Weight, req.ExtendedUntil.UTC().Format(time.RFC3339), req.Verdict, why)
		}
	case application.ActionContinue:
		if !current {
			return
		}
		step := req.Step
		a.Verdict, a.Action, a.PassedStep, a.Awaiting = req.Verdict, req.Action, &step, ""
		if p.st.Phase == Paused {
			p.st.Phase, p.st.PausedAt = Progressing, nil
			p.event("resumed at %d%%: verdict %s passes%s", p.st.Weight, req.Verdict, why)
		}
	}
}

// analysing reports whether step i still waits for a passing verdict.
func (p *planner) analysing(i int) bool {
	if p.spec.Analysis == nil || p.spec.Rollback {
		return false
	}
	a := p.st.Analysis
	return a == nil || a.PassedStep == nil || *a.PassedStep != i
}

// stableRunning reports whether the stable version still runs after a
// blue-green switch, within its rollback window.
func (p *planner) stableRunning() bool {
	return p.spec.Stable != nil && p.st.StableUntil != nil && p.now.Before(*p.st.StableUntil)
}

func (p *planner) stableName() string {
	if p.spec.Stable == nil {
		return "nothing (first deploy: no version serves)"
	}
	return p.spec.Stable.Version
}

// need reports whether the candidate has n healthy instances. While it has
// not, it fails the rollout once the progress deadline passes.
func (p *planner) need(n int) bool {
	if p.obs.Candidate.Healthy >= n {
		return true
	}
	_, deadline := p.spec.Strategy.Durations()
	if p.now.Sub(p.st.WaitingSince) > deadline {
		p.finish(Failed, "%s %s: %d of %d instances healthy after %s (progress deadline)", p.spec.App, p.spec.Candidate.Version, p.obs.Candidate.Healthy, n, deadline)
		return false
	}
	p.requeue = poll
	return false
}

// set records the desired replicas and the candidate's weight.
func (p *planner) set(candidate, stable, weight int) {
	if candidate == 0 {
		weight = 0
	}
	if p.spec.Stable == nil {
		stable, weight = 0, 100
		if candidate == 0 {
			weight = 0
		}
	} else if stable == 0 && candidate > 0 {
		weight = 100
	}
	p.st.CandidateReplicas, p.st.StableReplicas, p.st.Weight = candidate, stable, weight
	p.desired = Desired{App: p.spec.App, Environment: p.spec.Environment, Runtime: p.spec.Runtime}
	if p.spec.Strategy.Type == application.Rolling && p.spec.Stable != nil {
		p.desired.Rolling = &RollingUpdate{Candidate: p.spec.Candidate.Version, Replicas: p.spec.Replicas,
			MaxSurge: *p.spec.Strategy.MaxSurge, MaxUnavailable: *p.spec.Strategy.MaxUnavailable}
	}
	if candidate > 0 {
		p.desired.Versions = append(p.desired.Versions, DesiredVersion{Version: p.spec.Candidate, Replicas: candidate, Weight: weight})
	}
	if p.spec.Stable != nil && stable > 0 {
		w := 100 - weight
		if candidate == 0 {
			w = 100
		}
		p.desired.Versions = append(p.desired.Versions, DesiredVersion{Version: *p.spec.Stable, Replicas: stable, Weight: w, Runtime: p.spec.StableRuntime})
	}
}

// step moves to the next step: the candidate is asked for more.
func (p *planner) step(n int) {
	p.st.Step, p.st.WaitingSince, p.st.StepStartedAt, p.st.Resumed = n, p.now, nil, false
	if p.st.Analysis != nil {
		p.st.Analysis.ExtendedUntil = nil
	}
}

func (p *planner) firstDeploy() {
	n := p.spec.Replicas
	p.set(n, 0, 100)
	if p.need(n) {
		p.st.Step = 1
		p.finish(Succeeded, "%s %s serves in %s: %d of %d instances healthy", p.spec.App, p.spec.Candidate.Version, p.spec.Environment, p.obs.Candidate.Healthy, n)
	}
}

func (p *planner) blueGreen() {
	n := p.spec.Replicas
	p.set(n, n, 0)
	if !p.need(n) {
		return
	}
	switch ok := p.obs.Candidate.SmokeOK; {
	case ok == nil:
		p.requeue = poll
	case !*ok:
		p.finish(Failed, "%s %s failed its smoke check; traffic stays on %s", p.spec.App, p.spec.Candidate.Version, p.spec.Stable.Version)
	default:
		window, _ := p.spec.Strategy.Durations()
		now, until := p.now, p.now.Add(window)
		p.st.Step, p.st.SwitchedAt, p.st.StableUntil = 1, &now, &until
		p.set(n, n, 100)
		p.finish(Succeeded, "switched all traffic to %s %s; %s keeps running until %s for a rollback", p.spec.App, p.spec.Candidate.Version, p.spec.Stable.Version, until.UTC().Format(time.RFC3339))
	}
}

func (p *planner) canary() {
	n, steps := p.spec.Replicas, p.spec.Strategy.Steps
	i := min(p.st.Step, len(steps)-1)
	if p.st.PromoteRequested {
		p.st.PromoteRequested = false
		i = len(steps) - 1
		p.step(i)
		p.event("promoted: skipping to 100%%")
	}
	w := steps[i].Weight
	p.set(n, n, p.st.Weight)
	if !p.need(n) {
		return
	}
	if p.st.StepStartedAt == nil || p.st.Weight != w {
		now := p.now
		p.st.StepStartedAt = &now
		p.set(n, n, w)
		p.event("step %d of %d: %d%% of traffic on %s", i+1, len(steps), w, p.spec.Candidate.Version)
	}
	if w == 100 {
		p.set(n, 0, 100)
		p.finish(Succeeded, "%s %s serves 100%% of traffic in %s", p.spec.App, p.spec.Candidate.Version, p.spec.Environment)
		return
	}
	soak, manual := steps[i].PauseFor()
	if manual && p.st.Resumed {
		soak = 0
	} else if manual {
		now := p.now
		p.st.Phase, p.st.PausedAt = Paused, &now
		p.event("paused at %d%% until resumed (airlock rollout resume %s --env %s)", w, p.spec.App, p.spec.Environment)
		return
	}
	if elapsed := p.now.Sub(*p.st.StepStartedAt); elapsed < soak {
		p.requeue = soak - elapsed
		return
	}
	if !p.st.Resumed && p.analysing(i) {
		p.requeue = poll // the analysis's verdict on this step lets it go on
		return
	}
	p.step(i + 1)
	p.requeue = time.Millisecond // the next step at once
}

func (p *planner) rolling() {
	n := p.spec.Replicas
	surge, unavailable := *p.spec.Strategy.MaxSurge, *p.spec.Strategy.MaxUnavailable
	if p.st.PromoteRequested {
		p.st.PromoteRequested = false
		surge = n
		p.event("promoted: replacing the remaining instances at once")
	}
	done := p.st.Step // candidate instances proven healthy
	want := min(n, done+surge+unavailable)
	if done > 0 && done < n && p.analysing(done) {
		want = done // the next batch waits for the analysis's verdict on this one
		if p.st.StepStartedAt == nil {
			now := p.now
			p.st.StepStartedAt = &now
		}
	}
	stable := max(0, n-done-unavailable)
	if want == done { // nothing left to start
		stable = max(0, n-done)
	}
	p.set(want, stable, share(min(p.obs.Candidate.Healthy, want), stable))
	if done >= n {
		p.set(n, 0, 100)
		p.finish(Succeeded, "%s %s replaced all %d instances in %s", p.spec.App, p.spec.Candidate.Version, n, p.spec.Environment)
		return
	}
	if want == done { // waiting for the analysis
		if p.desired.Rolling != nil {
			p.desired.Rolling.Paused = true
		}
		if p.need(done) {
			p.requeue = poll
		}
		return
	}
	if p.need(want) {
		p.step(want)
		p.event("%d of %d instances replaced by %s", want, n, p.spec.Candidate.Version)
		p.requeue = time.Millisecond
	}
}

// share is the candidate's weight when traffic is spread evenly over
// candidate and stable instances.
func share(candidate, stable int) int {
	if candidate+stable == 0 {
		return 0
	}
	return (100*candidate + (candidate+stable)/2) / (candidate + stable)
}

// hold keeps a paused rollout where it is.
func (p *planner) hold() {
	n := p.spec.Replicas
	stable := p.st.StableReplicas
	if p.spec.Stable != nil && p.spec.Strategy.Type != application.Rolling {
		stable = n
	}
	p.set(max(p.st.CandidateReplicas, 1), stable, p.st.Weight)
	if p.desired.Rolling != nil {
		p.desired.Rolling.Paused = true
	}
}

// settle gives a finished rollout its final runtime state. Traffic never
// goes to nothing: when the stable version must come back (a rolling
// update stopped some of its instances), the candidate keeps serving until
// the stable version is healthy again.
func (p *planner) settle() {
	n := p.spec.Replicas
	switch p.st.Phase {
	case Succeeded:
		if p.stableRunning() {
			p.set(n, n, 100)
			p.requeue = p.st.StableUntil.Sub(p.now)
			return
		}
		p.set(n, 0, 100)
	default: // Failed, Aborted, RolledBack
		if p.spec.Stable == nil {
			p.set(0, 0, 0)
			return
		}
		if p.obs.Stable.Healthy >= n || p.obs.Candidate.Failed || p.obs.Candidate.Healthy == 0 {
			p.set(0, n, 0)
			return
		}
		p.set(p.st.CandidateReplicas, n, share(p.obs.Candidate.Healthy, p.obs.Stable.Healthy))
		p.requeue = poll
	}
}
