// Package environment defines the Environment kind: a place a release runs,
// with its tier (development up to production), how strongly it is isolated
// from its neighbours, which network and credential scopes it uses, and what
// class of data it holds.
//
// The package is pure: Validate checks one environment on its own and
// CheckSet checks the rules that span every environment (CIS 16.8
// separation of production from non-production). Neither does I/O.
package environment

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Tier is an environment's place in the path to production.
type Tier string

// Tiers, from the first place a change runs to the last.
const (
	TierDevelopment   Tier = "development"
	TierTesting       Tier = "testing"
	TierStaging       Tier = "staging"
	TierUAT           Tier = "uat"
	TierPreproduction Tier = "preproduction"
	TierProduction    Tier = "production"
)

// Tiers lists every tier in promotion order.
var Tiers = []Tier{TierDevelopment, TierTesting, TierStaging, TierUAT, TierPreproduction, TierProduction}

// Level is how strongly an environment is isolated from others. The levels
// are the five of Elastisys Welkin, from weakest to strongest.
type Level string

// Isolation levels, weakest first.
const (
	// LevelLabels: deployments share everything and are told apart only by
	// labels; secrets and files are readable across them.
	LevelLabels Level = "labels"
	// LevelNamespace: a shared cluster, separated by namespaces (a trust
	// boundary for secrets, with network policies).
	LevelNamespace Level = "namespace"
	// LevelNode: separate machines inside a shared environment.
	LevelNode Level = "node"
	// LevelCluster: separate workload clusters; platform services shared.
	LevelCluster Level = "cluster"
	// LevelEnvironment: nothing shared at all.
	LevelEnvironment Level = "environment"
)

// Levels lists every isolation level from weakest to strongest.
var Levels = []Level{LevelLabels, LevelNamespace, LevelNode, LevelCluster, LevelEnvironment}

// Rank orders levels: 0 for labels up to 4 for environment, and -1 for a
// value that is not a level.
func (l Level) Rank() int {
	for i, x := range Levels {
		if x == l {
			return i
		}
	}
	return -1
}

// AtLeast reports whether l is as strong as m or stronger. An unknown level
// is never strong enough.
func (l Level) AtLeast(m Level) bool { return l.Rank() >= 0 && l.Rank() >= m.Rank() }

// Data is the class of data an environment holds.
type Data string

// Data classes. Only a production-tier environment may hold production data.
const (
	DataProduction Data = "production" // real customer data
	DataMasked     Data = "masked"     // production data with sensitive fields irreversibly replaced
	DataSynthetic  Data = "synthetic"  // generated data with no real records
	DataSubset     Data = "subset"     // a small anonymised sample of production patterns
)

// DataClasses lists every data class.
var DataClasses = []Data{DataProduction, DataMasked, DataSynthetic, DataSubset}

// RuntimeLocal is the runtime that runs versions as processes on the
// airlock machine itself. It is the default.
const RuntimeLocal = "local"

// RuntimeKubernetes runs versions as Deployments in a namespace of a
// Kubernetes cluster (spec.kubernetes).
const RuntimeKubernetes = "kubernetes"

// Runtimes lists the runtime targets an environment may name.
var Runtimes = []string{RuntimeLocal, RuntimeKubernetes}

// Kubernetes says where an environment's applications run on Kubernetes.
type Kubernetes struct {
	// Kubeconfig is the path of a kubeconfig file on the airlock server
	// and Context the context in it (empty: its current context).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	// InCluster uses the cluster airlock runs in, as its pod's service
	// account, instead of a kubeconfig.
	InCluster bool `json:"inCluster,omitempty"`
	// Namespace holds the environment's objects.
	Namespace string `json:"namespace"`
	// Traffic is gateway (an HTTPRoute weights the versions, the default)
	// or service (the Service selector switches at once: blue-green only).
	Traffic string `json:"traffic,omitempty"`
	// Gateway is the HTTPRoutes' parent with traffic: gateway.
	Gateway *GatewayRef `json:"gateway,omitempty"`
}

// GatewayRef names a Gateway API Gateway.
type GatewayRef struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	SectionName string `json:"sectionName,omitempty"`
}

// MinimumProductionLevel is the weakest isolation a production-tier
// environment may have without a waiver.
const MinimumProductionLevel = LevelCluster

// MinWaiverReason is the shortest reason a waiver may give, in characters.
const MinWaiverReason = 10

// Spec is what a user declares about an environment.
type Spec struct {
	Tier      Tier      `json:"tier"`
	Isolation Isolation `json:"isolation"`
	Data      Data      `json:"data"`
	Runtime   string    `json:"runtime,omitempty"`
	// Kubernetes is required with runtime: kubernetes.
	Kubernetes  *Kubernetes `json:"kubernetes,omitempty"`
	Description string      `json:"description,omitempty"`
	// FlagChanges is how changes to this environment's feature flags are
	// controlled; absent means the defaults FlagChanges documents.
	FlagChanges *FlagChanges `json:"flagChanges,omitempty"`
	// Analysis is the policy for the canary analysis's recommendations
	// here; absent means every action runs automatically.
	Analysis *AnalysisPolicy `json:"analysis,omitempty"`
}

// AnalysisPolicy decides which of the analysis's recommended actions
// (continue, extend, pause, rollback-canary, rollback) run automatically
// in an environment. The others wait for a person: the rollout pauses and
// the verdict waits for airlock verdict accept (run the action) or
// override (judge otherwise).
type AnalysisPolicy struct {
	Automatic []string `json:"automatic"`
}

// AutomaticAnalysis reports whether the analysis's action runs without a
// person in an environment with spec s.
func (s Spec) AutomaticAnalysis(action string) bool {
	if s.Analysis == nil {
		return true
	}
	return slices.Contains(s.Analysis.Automatic, action)
}

// FlagChanges is the change control of an environment's feature flags.
//
// A production-tier environment always controls flag changes: each needs
// Approvals, or when none are declared those of the approvals gates on the
// application's transition into the environment, or else one tech-lead. A
// non-production environment applies flag changes at once unless it
// declares Approvals. Deployment windows apply to flag changes as to
// promotions unless IgnoreWindows is set.
type FlagChanges struct {
	// Approvals are the roles and counts one flag change needs.
	Approvals map[string]int `json:"approvals,omitempty"`
	// MaxAge is how long an approval counts (a duration, 1m to 720h;
	// default 72h).
	MaxAge string `json:"maxAge,omitempty"`
	// IgnoreWindows lets flag changes through closed deployment windows.
	IgnoreWindows bool `json:"ignoreWindows,omitempty"`
}

// Limits of a FlagChanges policy, as for an approvals gate.
const (
	MaxApprovalCount  = 10
	MaxApprovalsTotal = 20
	MinApprovalMaxAge = time.Minute
	MaxApprovalMaxAge = 720 * time.Hour
)

// Isolation says how an environment is separated from the others.
// Network and Credentials name scopes (a VPC, a vault path, a service
// account); two environments with the same name share that scope.
type Isolation struct {
	Level       Level   `json:"level"`
	Network     string  `json:"network"`
	Credentials string  `json:"credentials"`
	Waiver      *Waiver `json:"waiver,omitempty"`
}

// Waiver accepts, on the record, a production environment isolated more
// weakly than MinimumProductionLevel. It turns the error into a violation
// shown in the environment's status.
type Waiver struct {
	Reason  string     `json:"reason"`
	Expires *time.Time `json:"expires,omitempty"`
}

// Status is what the system records about an environment.
type Status struct {
	Violations []Violation `json:"violations,omitempty"`
}

// Violation is a rule an environment breaks. A waived violation is accepted
// on the record; it is still shown so nobody forgets it.
type Violation struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	Waived  bool   `json:"waived,omitempty"`
}

// Rules, as named in violations and set problems.
const (
	RuleProductionIsolation = "production-isolation"
	RuleProductionData      = "production-data"
	RuleSharedNetwork       = "shared-network"
	RuleSharedCredentials   = "shared-credentials"
	RuleSharedHost          = "shared-host"
	RuleWaiverExpired       = "waiver-expired"
	// RuleRuntimeIsolation: what the runtime shows of the declared
	// isolation (a Kubernetes namespace without its label or without a
	// NetworkPolicy), checked by the server every minute, not at apply.
	RuleRuntimeIsolation = "runtime-isolation"
	RuleInvalid          = "invalid"
)

// IsProduction reports whether the environment is production tier.
func (s Spec) IsProduction() bool { return s.Tier == TierProduction }

// RuntimeName returns the runtime, with the default applied.
func (s Spec) RuntimeName() string {
	if s.Runtime == "" {
		return RuntimeLocal
	}
	return s.Runtime
}

// Default fills in the fields a user may leave out: runtime becomes local.
func (s *Spec) Default() {
	s.Runtime = s.RuntimeName()
}

// Register adds the Environment kind to s. Its validation applies defaults
// and writes them back into the decoded object, so stored specs are explicit.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:        "Environment",
		Plural:      "environments",
		Aliases:     []string{"env", "envs"},
		NewSpec:     func() any { return &Spec{} },
		Validate:    validateObject,
		Declarative: true,
	})
}

func validateObject(obj *resource.Object, spec any) error {
	s, ok := spec.(*Spec)
	if !ok {
		return fmt.Errorf("environment: spec has type %T, want *environment.Spec", spec)
	}
	s.Default()
	if err := Validate(*s); err != nil {
		return err
	}
	return obj.SetSpec(s)
}

// suggestions maps common shorthands to the value meant.
var suggestions = map[string]string{
	"dev": "development", "develop": "development", "test": "testing", "qa": "testing",
	"stage": "staging", "stg": "staging", "pre-production": "preproduction", "preprod": "preproduction",
	"pre-prod": "preproduction", "prod": "production", "live": "production",
	"env": "environment", "separate": "environment", "ns": "namespace", "label": "labels",
	"anonymized": "masked", "anonymised": "masked", "fake": "synthetic", "generated": "synthetic", "sample": "subset",
}

func oneOf[T ~string](field string, got T, allowed []T) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	list := strings.Join(names, ", ")
	if got == "" {
		return fmt.Errorf("%s is required; use one of: %s", field, list)
	}
	hint := ""
	if s, ok := suggestions[strings.ToLower(string(got))]; ok {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		for _, a := range allowed {
			if strings.EqualFold(string(got), string(a)) {
				hint = fmt.Sprintf(" (did you mean %q?)", a)
			}
		}
	}
	return fmt.Errorf("%s %q is not allowed%s; use one of: %s", field, string(got), hint, list)
}

// Validate checks one environment on its own: every field has an allowed
// value, only a production-tier environment holds production data, and a
// production-tier environment is isolated at cluster level or stronger
// unless it carries a waiver. An empty runtime counts as local. The error is
// a *resource.PathError naming the field at fault.
func Validate(s Spec) error {
	if err := oneOf("tier", s.Tier, Tiers); err != nil {
		return resource.Errorf("spec.tier", "%v", err)
	}
	if err := oneOf("isolation.level", s.Isolation.Level, Levels); err != nil {
		return resource.Errorf("spec.isolation.level", "%v (weakest to strongest)", err)
	}
	if err := validateScope("network", s.Isolation.Network, "staging-net"); err != nil {
		return resource.Errorf("spec.isolation.network", "%v", err)
	}
	if err := validateScope("credentials", s.Isolation.Credentials, "staging-vault"); err != nil {
		return resource.Errorf("spec.isolation.credentials", "%v", err)
	}
	if err := oneOf("data", s.Data, DataClasses); err != nil {
		return resource.Errorf("spec.data", "%v", err)
	}
	if err := oneOf("runtime", s.RuntimeName(), Runtimes); err != nil {
		return resource.Errorf("spec.runtime", "%v (or leave it out for local)", err)
	}
	if err := validateKubernetes(s); err != nil {
		return err
	}
	if s.Data == DataProduction && !s.IsProduction() {
		return resource.Errorf("spec.data",
			"a %s environment must not hold production data: only tier production may (CIS 16.8); use masked, synthetic or subset data", s.Tier)
	}
	w := s.Isolation.Waiver
	if w != nil {
		if !s.IsProduction() {
			return resource.Errorf("spec.isolation.waiver",
				"a waiver only applies to a production-tier environment isolated below %s; this is a %s environment, so remove the waiver", MinimumProductionLevel, s.Tier)
		}
		if s.Isolation.Level.AtLeast(MinimumProductionLevel) {
			return resource.Errorf("spec.isolation.waiver",
				"level %s meets the production minimum of %s, so there is nothing to waive; remove the waiver", s.Isolation.Level, MinimumProductionLevel)
		}
		if r := strings.TrimSpace(w.Reason); len([]rune(r)) < MinWaiverReason {
			got := "no reason"
			if r != "" {
				got = fmt.Sprintf("the reason %q", r)
			}
			return resource.Errorf("spec.isolation.waiver.reason",
				"a waiver needs a reason of at least %d characters saying why weaker isolation is accepted; got %s", MinWaiverReason, got)
		}
	}
	if fc := s.FlagChanges; fc != nil {
		if err := validateFlagChanges(*fc); err != nil {
			return err
		}
	}
	if ap := s.Analysis; ap != nil {
		for i, a := range ap.Automatic {
			if !slices.Contains(application.Actions, a) {
				return resource.Errorf(fmt.Sprintf("spec.analysis.automatic[%d]", i), "action %q is not one of %s", a, strings.Join(application.Actions, ", "))
			}
		}
	}
	if s.IsProduction() && !s.Isolation.Level.AtLeast(MinimumProductionLevel) && w == nil {
		return resource.Errorf("spec.isolation.level",
			"a production environment needs isolation level %s or stronger (%s), got %s; raise the level, or accept the risk on the record by adding isolation.waiver with a reason",
			MinimumProductionLevel, "one of: "+strings.Join(levelNames(MinimumProductionLevel), ", "), s.Isolation.Level)
	}
	return nil
}

func validateFlagChanges(fc FlagChanges) error {
	total := 0
	for role, n := range fc.Approvals {
		if err := resource.ValidateName(role); err != nil {
			return resource.Errorf("spec.flagChanges.approvals."+role, "role %v", err)
		}
		if n < 1 || n > MaxApprovalCount {
			return resource.Errorf("spec.flagChanges.approvals."+role, "the count of %s approvals must be from 1 to %d, got %d", role, MaxApprovalCount, n)
		}
		total += n
	}
	if total > MaxApprovalsTotal {
		return resource.Errorf("spec.flagChanges.approvals", "at most %d approvals in all may be required, got %d", MaxApprovalsTotal, total)
	}
	if fc.MaxAge != "" {
		d, err := time.ParseDuration(fc.MaxAge)
		if err != nil || d < MinApprovalMaxAge || d > MaxApprovalMaxAge {
			return resource.Errorf("spec.flagChanges.maxAge", "maxAge %q must be a duration from 1m to 720h, e.g. 72h", fc.MaxAge)
		}
	}
	return nil
}

func levelNames(min Level) []string {
	var out []string
	for _, l := range Levels {
		if l.AtLeast(min) {
			out = append(out, string(l))
		}
	}
	return out
}

// validateScope checks a network or credential scope name. Scope names are
// compared exactly, so they follow the object-name rules (lower case): two
// spellings of one scope could otherwise hide that it is shared.
func validateScope(what, name, example string) error {
	if name == "" {
		return fmt.Errorf("isolation.%s is required: name the %s scope this environment uses (e.g. %q), distinct from the scopes of environments it must be separated from", what, what, example)
	}
	if err := resource.ValidateName(name); err != nil {
		return fmt.Errorf("%s scope: %v", what, err)
	}
	return nil
}

// validateKubernetes checks spec.kubernetes against the runtime.
func validateKubernetes(s Spec) error {
	k := s.Kubernetes
	switch {
	case s.RuntimeName() != RuntimeKubernetes && k != nil:
		return resource.Errorf("spec.kubernetes", "applies to runtime: kubernetes only")
	case s.RuntimeName() != RuntimeKubernetes:
		return nil
	case k == nil:
		return resource.Errorf("spec.kubernetes", "runtime kubernetes needs kubernetes: {kubeconfig: PATH, namespace: NAME}")
	case k.InCluster && (k.Kubeconfig != "" || k.Context != ""):
		return resource.Errorf("spec.kubernetes.inCluster", "inCluster uses the pod's service account: remove kubeconfig and context")
	case !k.InCluster && !filepath.IsAbs(k.Kubeconfig):
		return resource.Errorf("spec.kubernetes.kubeconfig", "the kubeconfig must be an absolute path on the airlock server (or set inCluster: true), got %q", k.Kubeconfig)
	case resource.ValidateName(k.Namespace) != nil || strings.Contains(k.Namespace, "."):
		return resource.Errorf("spec.kubernetes.namespace", "namespace %q is not a DNS label (lower case letters, digits and '-', at most 63)", k.Namespace)
	case k.Traffic != "" && k.Traffic != "gateway" && k.Traffic != "service":
		return resource.Errorf("spec.kubernetes.traffic", "traffic %q is not gateway or service", k.Traffic)
	case k.Traffic != "service" && (k.Gateway == nil || k.Gateway.Name == ""):
		return resource.Errorf("spec.kubernetes.gateway", "traffic: gateway needs the Gateway the HTTPRoutes attach to (gateway: {name, namespace})")
	}
	return nil
}
