// Package rollout carries a release into an environment's runtime: it
// starts the new version beside the running one and moves traffic to it by
// a blue-green, canary or rolling strategy, and takes it back when the new
// version fails or someone rolls back.
//
// A Rollout object's status holds all progress. Plan is pure: it reads the
// spec, the status, what the runtime target observed and the time, and
// returns the next status and the desired state of the runtime. The
// reconciler loads, plans, applies the desired state through a Target and
// persists the status with a revision check; a restarted server carries on
// from the status.
package rollout

import (
	"context"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Kind is the kind this package owns.
const Kind = "Rollout"

// Phase is where a rollout stands.
type Phase string

// Phases. Progressing and Paused are active; the others are final.
// Succeeded: the new version serves all traffic. Failed: it did not become
// healthy (traffic stayed on, or went back to, the stable version).
// Aborted and RolledBack: someone stopped it or rolled it back.
const (
	Progressing Phase = "Progressing"
	Paused      Phase = "Paused"
	Succeeded   Phase = "Succeeded"
	Failed      Phase = "Failed"
	Aborted     Phase = "Aborted"
	RolledBack  Phase = "RolledBack"
)

// Active reports whether the rollout is still moving.
func (p Phase) Active() bool { return p == Progressing || p == Paused || p == "" }

// Version names one version of an application: its version string,
// release and artifact digest.
type Version struct {
	Version string `json:"version"`
	Release string `json:"release"`
	Digest  string `json:"digest"`
}

// Spec is what a rollout does: bring Candidate into the environment in
// place of Stable, by Strategy.
type Spec struct {
	App         string               `json:"app"`
	Environment string               `json:"environment"`
	Candidate   Version              `json:"candidate"`
	Stable      *Version             `json:"stable,omitempty"` // nil: first deploy, nothing serves yet
	Replicas    int                  `json:"replicas"`
	Strategy    application.Strategy `json:"strategy"` // resolved: every default filled in
	Runtime     Runtime              `json:"runtime"`
	// StableRuntime is what the stable version was deployed with: it keeps
	// running with it (nil: the same as Runtime).
	StableRuntime *Runtime `json:"stableRuntime,omitempty"`
	Promotion     string   `json:"promotion,omitempty"`
	// Rollback marks a rollout that restores Candidate, the version that
	// served before Stable, at someone's request.
	Rollback bool   `json:"rollback,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Analysis, copied from the application when the rollout starts,
	// makes each canary step and rolling batch wait for a passing verdict
	// of the analysis before the next (see AnalysisStatus).
	Analysis *application.Analysis `json:"analysis,omitempty"`
}

// Runtime are the application's settings in the environment that the
// runtime target needs, copied from the Application when the rollout
// starts. SecretEnv names variables of the airlock server; their values
// are read by the target when an instance starts, never stored.
type Runtime struct {
	Listen     string            `json:"listen,omitempty"`
	HealthPath string            `json:"healthPath,omitempty"`
	SmokePath  string            `json:"smokePath,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	SecretEnv  map[string]string `json:"secretEnv,omitempty"`
	Args       []string          `json:"args,omitempty"`
	// Image is the container image repository the release digests belong
	// to (the Kubernetes target runs IMAGE@DIGEST).
	Image string `json:"image,omitempty"`
	// KeepDrift leaves hand edits on the runtime in place (reported, not
	// reverted).
	KeepDrift bool `json:"keepDrift,omitempty"`
}

// Status is everything a rollout has done; a restarted server carries on
// from it.
type Status struct {
	Phase   Phase  `json:"phase"`
	Message string `json:"message,omitempty"`
	// Step is the canary step (index into the strategy's steps), the
	// instances a rolling update has replaced, or 0 / 1 before and after a
	// blue-green switch.
	Step int `json:"step"`
	// Weight is the candidate's share of traffic in percent.
	Weight            int        `json:"weight"`
	CandidateReplicas int        `json:"candidateReplicas"`
	StableReplicas    int        `json:"stableReplicas"`
	StartedAt         time.Time  `json:"startedAt"`
	StepStartedAt     *time.Time `json:"stepStartedAt,omitempty"` // when the current step's soak began (candidate healthy)
	WaitingSince      time.Time  `json:"waitingSince"`            // when the candidate was last asked for more healthy instances
	PausedAt          *time.Time `json:"pausedAt,omitempty"`
	SwitchedAt        *time.Time `json:"switchedAt,omitempty"` // blue-green: when traffic moved
	StableUntil       *time.Time `json:"stableUntil,omitempty"`
	FinishedAt        *time.Time `json:"finishedAt,omitempty"`
	// Requests from people, applied by the next Plan.
	PauseRequested  bool `json:"pauseRequested,omitempty"`
	ResumeRequested bool `json:"resumeRequested,omitempty"`
	// Resumed is set when someone resumed the current step, so a manual
	// pause lets the canary go on; it is cleared at the next step.
	Resumed          bool   `json:"resumed,omitempty"`
	PromoteRequested bool   `json:"promoteRequested,omitempty"`
	AbortRequested   string `json:"abortRequested,omitempty"`    // the reason
	RollbackReason   string `json:"rollbackRequested,omitempty"` // the reason
	// AnalysisRequest is an action of the analysis (or of a person
	// deciding on its verdict), applied by the next Plan.
	AnalysisRequest *AnalysisRequest `json:"analysisRequest,omitempty"`
	// Analysis is where the analysis stands; nil until its first action.
	Analysis *AnalysisStatus `json:"analysis,omitempty"`
	Events   []Event         `json:"events,omitempty"`
}

// AnalysisRequest asks the planner to act on a verdict: Action is one of
// application.Actions, Step the step the verdict judged (a continue or
// extend for a step the rollout has left is ignored).
type AnalysisRequest struct {
	Action  string `json:"action"`
	Verdict string `json:"verdict"`
	Step    int    `json:"step"`
	Reason  string `json:"reason,omitempty"`
	// ExtendedUntil is when an extended soak ends (action extend).
	ExtendedUntil *time.Time `json:"extendedUntil,omitempty"`
}

// AnalysisStatus is the analysis's hold on a rollout. With Spec.Analysis
// set, a canary step (after its soak) or a rolling batch goes on only when
// PassedStep is that step.
type AnalysisStatus struct {
	PassedStep *int `json:"passedStep,omitempty"`
	// Verdict and Action are the latest verdict acted on and its action.
	Verdict string `json:"verdict,omitempty"`
	Action  string `json:"action,omitempty"`
	// ExtendedUntil is when the current step's extended soak ends.
	ExtendedUntil *time.Time `json:"extendedUntil,omitempty"`
	// Awaiting names a verdict whose action waits for a person (airlock
	// verdict accept|override); the rollout is paused meanwhile.
	Awaiting string `json:"awaiting,omitempty"`
}

// Event is one thing a rollout did, for people.
type Event struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// maxEvents bounds the events a status keeps.
const maxEvents = 50

// Observation is what the runtime target saw of the two versions.
type Observation struct {
	Candidate VersionState
	Stable    VersionState
	// Error is why the target could not reach the last desired state (an
	// artifact missing from the content store, a listen address taken).
	Error string
	// Drift says what the target found changed by hand on the objects it
	// owns since it last looked, and whether it reverted it.
	Drift []string
}

// VersionState is one version's instances as the target sees them.
type VersionState struct {
	Running int // instances started and not given up on
	Healthy int // instances passing their health check
	// Failed is set when the version cannot run (its artifact does not
	// match its digest, it crashes in a loop); Reason says why.
	Failed bool
	Reason string
	// SmokeOK is the result of the smoke request against the version
	// (nil: not tried yet).
	SmokeOK *bool
}

// Desired is the state the runtime target is to reach for one application
// in one environment. Versions not listed are stopped.
type Desired struct {
	App         string           `json:"app"`
	Environment string           `json:"environment"`
	Runtime     Runtime          `json:"runtime"`
	Versions    []DesiredVersion `json:"versions"`
	// Rolling is set for a rolling update: a runtime with rolling updates
	// of its own (Kubernetes) runs the version the update moves to with
	// its own surge and unavailability instead of the per-version counts,
	// and reports its progress as the candidate's healthy instances.
	Rolling *RollingUpdate `json:"rolling,omitempty"`
}

// RollingUpdate describes a rolling update for runtimes that do their own.
type RollingUpdate struct {
	Candidate                string `json:"candidate"`
	Replicas                 int    `json:"replicas"`
	MaxSurge, MaxUnavailable int
	// Paused holds the update where it is (the rollout is paused, or a
	// batch waits for the analysis's verdict).
	Paused bool `json:"paused,omitempty"`
}

// DesiredVersion is one version to run, how many instances, and its share
// of traffic (weights of all versions sum to 100, or are all 0 when
// nothing is healthy yet).
type DesiredVersion struct {
	Version
	Replicas int `json:"replicas"`
	Weight   int `json:"weight"`
	// Runtime, when set, is this version's own configuration (env,
	// secrets, health path) in place of Desired.Runtime's.
	Runtime *Runtime `json:"runtime,omitempty"`
}

// Target is a runtime: it makes the running state of an application in an
// environment match Desired, and reports what it sees.
type Target interface {
	Apply(ctx context.Context, d Desired) error
	Observe(ctx context.Context, app, env string, candidate, stable *Version) (Observation, error)
}

// Register adds the Rollout kind to a scheme. Rollouts are started by
// promotions and steered through their own endpoints.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: Kind, Plural: "rollouts", Aliases: []string{"rollout", "ro"}, NewSpec: func() any { return &Spec{} }})
}
