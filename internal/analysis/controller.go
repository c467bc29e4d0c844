package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/logs"
	"github.com/airlock-dev/airlock/internal/analysis/signals"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

// Source is what the runtime target tells the analysis about the
// versions of an application in an environment.
type Source interface {
	// Counters returns a version's cumulative router counters, and false
	// when the router has not seen it.
	Counters(app, env, version string) (Counters, bool)
	// Health returns how many of a version's instances run and how many
	// are healthy.
	Health(app, env, version string) (running, healthy int)
	// Logs returns up to n of the newest lines of each of a version's
	// instances.
	Logs(app, env, version string, n int) ([]string, error)
	// Address is where the application is served in env ("" when not).
	Address(app, env string) string
}

// Judge is the name verdicts of the analysis carry as their judge.
const JudgeName = "system:analysis"

// Controller runs the analysis of every rollout that asks for it. RunOnce
// looks once; Loop looks every second.
type Controller struct {
	Store  store.Store
	Source Source
	// Bounds are the latency histogram's bucket bounds (router.LatencyBounds).
	Bounds []time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// Wake tells the rollout reconciler to act on a recorded action.
	Wake func()
	// HTTP is the client of probes (nil: a default one); LookupEnv reads
	// the Prometheus credentials' variables (nil: none are set).
	HTTP      *http.Client
	LookupEnv func(string) (string, bool)

	mu   sync.Mutex
	runs map[string]*run
}

// run is the analysis of one rollout.
type run struct {
	cfg        Config
	judge      *Judge
	lastDecide time.Time
	verdicts   int
	queries    []*signals.PromQuery
	probes     []*signals.Probe
	probeLast  map[string]time.Time
	loadErrs   int
	loadErr    string
}

func (c *Controller) init() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs = map[string]*run{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Wake == nil {
		c.Wake = func() {}
	}
}

// Loop runs the analysis every second until ctx ends.
func (c *Controller) Loop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.Logger.WarnContext(ctx, "canary analysis", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// analysed reports whether a rollout is judged by the analysis.
func analysed(spec rollout.Spec) bool {
	return spec.Analysis != nil && !spec.Rollback && spec.Stable != nil &&
		(spec.Strategy.Type == application.Canary || spec.Strategy.Type == application.Rolling)
}

// RunOnce looks at every progressing rollout with analysis once: it feeds
// the judge and, when a judgement is due, records a verdict and its
// action.
func (c *Controller) RunOnce(ctx context.Context) error {
	c.init()
	objs, err := c.Store.List(ctx, rollout.Kind, resource.Selector{{Key: rollout.CurrentLabel, Op: resource.Equals, Values: []string{"true"}}})
	if err != nil {
		return err
	}
	live := map[string]bool{}
	var errs []error
	for _, o := range objs {
		spec, st, err := rollout.Decode(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !analysed(spec) || st.Phase != rollout.Progressing || st.AnalysisRequest != nil {
			continue // a paused rollout starts afresh when it resumes
		}
		live[o.Metadata.Name] = true
		if err := c.one(ctx, o.Metadata.Name, spec, st); err != nil {
			errs = append(errs, fmt.Errorf("analysis of rollout %s: %w", o.Metadata.Name, err))
		}
	}
	c.mu.Lock()
	for name := range c.runs {
		if !live[name] {
			delete(c.runs, name)
		}
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}

func (c *Controller) one(ctx context.Context, name string, spec rollout.Spec, st rollout.Status) error {
	now := c.Now()
	c.mu.Lock()
	r := c.runs[name]
	c.mu.Unlock()
	if r == nil || r.judge == nil {
		if r == nil {
			r = &run{probeLast: map[string]time.Time{}}
			c.mu.Lock()
			c.runs[name] = r
			c.mu.Unlock()
		}
		if err := c.start(ctx, r, spec); err != nil {
			// A template that is missing or does not load counts as a
			// signal error: after the limit the rollout pauses.
			r.loadErrs++
			r.loadErr = err.Error()
			if r.loadErrs < signals.DefaultErrorLimit {
				return nil
			}
			j := Judgement{Record: true, Outcome: verdict.Inconclusive, Action: application.ActionPause,
				Summary: fmt.Sprintf("the analysis could not load its configuration %d times: %s", r.loadErrs, err)}
			j.Reasons = []string{j.Summary}
			r.loadErrs = 0
			return c.record(ctx, r, name, spec, st, j)
		}
	}
	look := Look{At: now, Instances: st.CandidateReplicas}
	var okC, okB bool
	look.Candidate, okC = c.Source.Counters(spec.App, spec.Environment, spec.Candidate.Version)
	look.Baseline, okB = c.Source.Counters(spec.App, spec.Environment, spec.Stable.Version)
	look.Routed = okC || okB
	_, look.Healthy = c.Source.Health(spec.App, spec.Environment, spec.Candidate.Version)
	r.judge.Observe(look)
	c.Logger.Debug("analysis look", slog.String("rollout", name), slog.Any("sequential", r.judge.seqRes),
		slog.Uint64("candidateRequests", look.Candidate.Requests), slog.Uint64("candidateErrors", look.Candidate.Errors),
		slog.Uint64("baselineRequests", look.Baseline.Requests), slog.Uint64("baselineErrors", look.Baseline.Errors))
	if st.StepStartedAt == nil {
		return nil // the step's weight is not applied yet
	}
	r.judge.Step(st.Step, *st.StepStartedAt)
	if now.Sub(r.lastDecide) < r.cfg.Interval {
		return nil
	}
	r.lastDecide = now
	stepEnd := c.stepEnded(r, spec, st, now)
	x := c.gather(ctx, r, spec, now, stepEnd)
	j := r.judge.Decide(now, stepEnd, x)
	if !j.Record {
		return nil
	}
	return c.record(ctx, r, name, spec, st, j)
}

// start loads the rollout's configuration and builds its judge and
// signal sources.
func (c *Controller) start(ctx context.Context, r *run, spec rollout.Spec) error {
	cfg, _, err := Load(ctx, c.Store, *spec.Analysis)
	if err != nil {
		return err
	}
	judge, err := NewJudge(cfg, c.Bounds)
	if err != nil {
		return err
	}
	r.cfg, r.queries, r.probes = cfg, nil, nil
	if cfg.Prometheus != nil {
		opts := []signals.ClientOption{}
		if c.LookupEnv != nil {
			opts = append(opts, signals.WithLookupEnv(c.LookupEnv))
		}
		client, err := signals.NewClient(*cfg.Prometheus, opts...)
		if err != nil {
			return err
		}
		for _, q := range cfg.Queries {
			pq, err := signals.NewPromQuery(client, q)
			if err != nil {
				return err
			}
			r.queries = append(r.queries, pq)
		}
	}
	addr := c.Source.Address(spec.App, spec.Environment)
	for _, p := range cfg.Probes {
		p.URL = strings.ReplaceAll(p.URL, "{{listen}}", addr)
		for k, v := range p.Headers {
			if strings.Contains(v, "{{listen}}") {
				p.Headers = cloneMap(p.Headers)
				p.Headers[k] = strings.ReplaceAll(v, "{{listen}}", addr)
			}
		}
		pr, err := signals.NewProbe(p, c.HTTP)
		if err != nil {
			return err
		}
		r.probes = append(r.probes, pr)
	}
	r.judge = judge
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stepEnded reports whether the current step has been watched long
// enough for its verdict: a canary step's soak (and any extension), a
// rolling batch's Soak.
func (c *Controller) stepEnded(r *run, spec rollout.Spec, st rollout.Status, now time.Time) bool {
	if a := st.Analysis; a != nil {
		if a.PassedStep != nil && *a.PassedStep == st.Step {
			return false // already passed; the planner moves on
		}
		if a.ExtendedUntil != nil && now.Before(*a.ExtendedUntil) {
			return false
		}
	}
	soak := r.cfg.Soak
	if spec.Strategy.Type == application.Canary {
		steps := spec.Strategy.Steps
		i := min(st.Step, len(steps)-1)
		d, manual := steps[i].PauseFor()
		if manual || steps[i].Weight == 100 {
			return false
		}
		soak = d
	}
	return now.Sub(*st.StepStartedAt) >= soak
}

// gather fetches the slower signals: the queries for both versions, the
// probes that are due, and at a step's end the logs.
func (c *Controller) gather(ctx context.Context, r *run, spec rollout.Spec, now time.Time, stepEnd bool) Extra {
	x := Extra{Queries: map[string]QueryValue{}, Errors: map[string]string{}}
	cand := signals.Labels{App: spec.App, Environment: spec.Environment, Version: spec.Candidate.Version}
	base := cand
	base.Version = spec.Stable.Version
	for _, q := range r.queries {
		cv, err := queryValue(ctx, q, cand, now)
		if err != nil {
			x.Errors["query:"+q.Name()] = err.Error()
			continue
		}
		bv, err := queryValue(ctx, q, base, now)
		if err != nil {
			x.Errors["query:"+q.Name()] = err.Error()
			continue
		}
		x.Queries[q.Name()] = QueryValue{Candidate: cv, Baseline: bv}
	}
	for _, p := range r.probes {
		if last, ok := r.probeLast[p.Name()]; ok && now.Sub(last) < p.Interval() {
			continue
		}
		r.probeLast[p.Name()] = now
		res := p.Run(ctx, cand, nil)
		switch res.Kind {
		case signals.KindDNS, signals.KindConfig, signals.KindTemplate, signals.KindCanceled:
			x.Errors["probe:"+p.Name()] = res.Reason // the probe could not be made
		default:
			x.Probes = append(x.Probes, ProbeOutcome{Name: p.Name(), OK: res.OK, Reason: res.Reason})
		}
	}
	if stepEnd && !r.cfg.Logs.Disabled {
		findings, lines, err := c.compareLogs(spec, r.cfg.Logs.Lines)
		if err != nil {
			x.Errors["logs"] = err.Error()
		}
		x.Logs, x.LogLines = findings, lines
	}
	return x
}

// queryValue runs q for l and sums the newest sample of every series.
func queryValue(ctx context.Context, q *signals.PromQuery, l signals.Labels, now time.Time) (float64, error) {
	res, err := q.Fetch(ctx, l, now)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, s := range res.Series {
		if n := len(s.Samples); n > 0 {
			sum += s.Samples[n-1].Value
		}
	}
	if math.IsInf(sum, 0) {
		return 0, fmt.Errorf("query %s: the value is infinite", q.Name())
	}
	return sum, nil
}

// compareLogs mines the newest lines of both versions and returns the
// candidate's new or risen error templates.
func (c *Controller) compareLogs(spec rollout.Spec, n int) ([]logs.Finding, int, error) {
	cl, err := c.Source.Logs(spec.App, spec.Environment, spec.Candidate.Version, n)
	if err != nil {
		return nil, 0, err
	}
	bl, err := c.Source.Logs(spec.App, spec.Environment, spec.Stable.Version, n)
	if err != nil {
		return nil, 0, err
	}
	findings, err := logs.CompareLines(bl, cl, logs.Options{}, logs.CompareOptions{})
	return findings, len(cl), err
}

// record stores the judgement as a verdict and, in the same transaction,
// hands its action to the rollout: at once when the environment's policy
// lets it run automatically, otherwise as a pause that waits for a
// person's decision on the verdict.
func (c *Controller) record(ctx context.Context, r *run, name string, spec rollout.Spec, st rollout.Status, j Judgement) error {
	// Without the environment's policy nothing runs automatically.
	automatic := false
	if env, err := c.Store.Get(ctx, "Environment", spec.Environment); err == nil {
		var es environment.Spec
		if err := env.DecodeSpec(&es); err != nil {
			return err
		}
		automatic = es.AutomaticAnalysis(j.Action) && !j.Confirm
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("environment %s: %w", spec.Environment, err)
	}
	vs := verdict.Spec{App: spec.App, Environment: spec.Environment, Version: spec.Candidate.Version,
		Subject: verdict.Subject{Kind: rollout.Kind, Name: name}, Outcome: j.Outcome, Summary: j.Summary,
		Reasons: j.Reasons, Signals: j.Signals, Judge: JudgeName, Action: j.Action, Automatic: automatic,
		Confidence: j.Confidence, Step: st.Step, Score: j.Score}
	req := rollout.AnalysisRequest{Action: j.Action, Step: st.Step}
	if !automatic {
		req.Action = application.ActionPause
		req.Reason = fmt.Sprintf("%s recommended: %s", j.Action, j.Summary)
	} else if j.Action == application.ActionPause {
		req.Reason = j.Summary
	}
	if j.Action == application.ActionExtend && automatic {
		until := c.Now().Add(c.extension(r, spec, st))
		req.ExtendedUntil = &until
	}
	actor := store.Actor{Name: JudgeName, Reason: fmt.Sprintf("verdict on %s step %d: %s, %s", name, st.Step+1, j.Outcome, j.Action)}
	var err error
	for attempt := 0; ; attempt++ {
		r.verdicts++
		vname := fmt.Sprintf("%s.%d.%d", name, st.Step+1, r.verdicts)
		req.Verdict = vname
		err = c.Store.Write(ctx, actor, func(tx store.Tx) error {
			o, err := verdict.Record(ctx, tx, vname, vs)
			if err != nil {
				return err
			}
			if automatic {
				if err := markExecuted(ctx, tx, o, j.Action, JudgeName); err != nil {
					return err
				}
			}
			return requestAction(ctx, tx, name, req)
		})
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // a verdict of an earlier server: take the next number
		}
		break
	}
	if err != nil {
		return err
	}
	if j.Action == application.ActionExtend && automatic {
		r.judge.Extended()
	}
	c.Logger.InfoContext(ctx, "canary verdict", slog.String("rollout", name), slog.String("outcome", string(j.Outcome)),
		slog.String("action", j.Action), slog.Bool("automatic", automatic), slog.String("summary", j.Summary))
	c.Wake()
	return nil
}

// extension is how long an extended soak lasts: the step's own soak, at
// least one interval.
func (c *Controller) extension(r *run, spec rollout.Spec, st rollout.Status) time.Duration {
	d := r.cfg.Soak
	if spec.Strategy.Type == application.Canary {
		steps := spec.Strategy.Steps
		d, _ = steps[min(st.Step, len(steps)-1)].PauseFor()
	}
	return max(d, r.cfg.Interval)
}

// markExecuted records on verdict o that its action was carried out.
func markExecuted(ctx context.Context, tx store.Tx, o *resource.Object, action, by string) error {
	v, err := verdict.Decode(o)
	if err != nil {
		return err
	}
	v.Status.Executed = &verdict.Execution{Action: action, By: by, At: tx.Now()}
	next := o.DeepCopy()
	if err := next.SetStatus(v.Status); err != nil {
		return err
	}
	_, err = tx.Update(ctx, next)
	return err
}

// requestAction hands an action to rollout name, which must still be
// active.
func requestAction(ctx context.Context, tx store.Tx, name string, req rollout.AnalysisRequest) error {
	o, err := tx.Get(ctx, rollout.Kind, name)
	if err != nil {
		return fmt.Errorf("rollout %s: %w", name, err)
	}
	_, st, err := rollout.Decode(o)
	if err != nil {
		return err
	}
	if !st.Phase.Active() {
		return &verdict.PolicyError{Msg: fmt.Sprintf("rollout %s already ended (%s); there is nothing left to act on", name, st.Phase)}
	}
	st.AnalysisRequest = &req
	next := o.DeepCopy()
	if err := next.SetStatus(st); err != nil {
		return err
	}
	_, err = tx.Update(ctx, next)
	return err
}

// Decided carries out a person's decision on a verdict of the analysis
// (verdict.DecideRequest.Then): for a verdict whose action waits for a
// person on a rollout still paused for it, accepting runs the recommended
// action; overriding to pass lets the step go on, to fail rolls the
// canary back, to inconclusive keeps it paused. Other decisions only
// record the person's judgement.
func Decided(wake func()) func(ctx context.Context, tx store.Tx, v verdict.Verdict, actor store.Actor) error {
	return func(ctx context.Context, tx store.Tx, v verdict.Verdict, actor store.Actor) error {
		if v.Spec.Subject.Kind != rollout.Kind || v.Spec.Judge != JudgeName ||
			(v.Status.Executed != nil && v.Status.Executed.Action != application.ActionPause) {
			return nil
		}
		o, err := tx.Get(ctx, rollout.Kind, v.Spec.Subject.Name)
		if err != nil {
			return fmt.Errorf("rollout %s: %w", v.Spec.Subject.Name, err)
		}
		_, st, err := rollout.Decode(o)
		if err != nil {
			return err
		}
		if st.Analysis == nil || st.Analysis.Awaiting != v.Name || !st.Phase.Active() {
			return nil // nothing waits on this verdict any more
		}
		action := v.Spec.Action
		if ov := v.Status.Override; ov != nil {
			switch ov.Outcome {
			case verdict.Pass:
				action = application.ActionContinue
			case verdict.Fail:
				action = application.ActionRollbackCanary
			default:
				action = application.ActionPause
			}
		}
		if action == application.ActionPause {
			return nil // it stays paused; resume or abort it with airlock rollout
		}
		if action == application.ActionExtend {
			action = application.ActionContinue // the person looked: the step goes on
		}
		vo, err := tx.Get(ctx, verdict.Kind, v.Name)
		if err != nil {
			return err
		}
		if err := markExecuted(ctx, tx, vo, action, actor.Name); err != nil {
			return err
		}
		req := rollout.AnalysisRequest{Action: action, Verdict: v.Name, Step: v.Spec.Step, Reason: "decided by " + actor.Name}
		if err := requestAction(ctx, tx, v.Spec.Subject.Name, req); err != nil {
			return err
		}
		if wake != nil {
			wake()
		}
		return nil
	}
}
