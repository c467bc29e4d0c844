// Package application defines the Application kind: something a team ships,
// who owns it, which pipeline its releases travel, and small per-environment
// runtime settings.
//
// Validate checks an application on its own; Check checks it against the
// pipelines that exist. Both are pure.
package application

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/airlock-dev/airlock/internal/resource"
)

// DefaultReplicas is the number of replicas when an environment's settings
// leave it out.
const DefaultReplicas = 1

// MaxReplicas bounds replicas per environment.
const MaxReplicas = 1000

// maxOwner bounds the length of one owner (a user, team or e-mail address).
const maxOwner = 253

// Spec is what a user declares about an application.
type Spec struct {
	Owners     []string `json:"owners"`
	Pipeline   string   `json:"pipeline"`
	UserFacing bool     `json:"userFacing,omitempty"`
	// Signoffs are the kinds of sign-off the application declares it needs
	// (e.g. accessibility, compliance), so a pipeline's gates can apply
	// "where the app declares them": when: app.declares("accessibility").
	Signoffs     []string               `json:"signoffs,omitempty"`
	Description  string                 `json:"description,omitempty"`
	Environments map[string]EnvSettings `json:"environments,omitempty"`
}

// EnvSettings are the application's runtime settings in one environment of
// its pipeline. Environments without an entry use the defaults.
type EnvSettings struct {
	// Replicas is how many instances run; nil means DefaultReplicas and 0
	// means none.
	Replicas *int `json:"replicas,omitempty"`
	// Listen is the host:port the application is served on, if any: the
	// built-in router's listener on the local runtime.
	Listen string `json:"listen,omitempty"`
	// Strategy is how a new version replaces the running one here.
	Strategy *Strategy `json:"strategy,omitempty"`
	// HealthPath is what the runtime requests on each instance to know it
	// is healthy (default /healthz).
	HealthPath string `json:"healthPath,omitempty"`
	// Env is configuration given to each instance as environment
	// variables. Values are stored in the object: no secrets here.
	Env map[string]string `json:"env,omitempty"`
	// RollbackPlan is the written plan for undoing a deployment here;
	// every promotion into the environment carries it (a promotion may
	// bring its own). Default: the airlock rollback command.
	RollbackPlan string `json:"rollbackPlan,omitempty"`
	// Args are the command line arguments each instance is started with.
	Args []string `json:"args,omitempty"`
	// SecretEnv maps an instance's environment variable to the variable of
	// the airlock server that holds the secret value, which is read when an
	// instance starts and never stored, logged or audited.
	SecretEnv map[string]string `json:"secretEnv,omitempty"`
	// Image is the container image repository of the application's
	// releases on a Kubernetes environment (registry.example/shop): the
	// runtime runs IMAGE@DIGEST, the release's artifact digest.
	Image string `json:"image,omitempty"`
	// KeepDrift, on Kubernetes, reports hand edits of the objects airlock
	// owns (replicas, image) without reverting them; by default airlock
	// reverts them at its next reconcile (self-heal).
	KeepDrift bool `json:"keepDrift,omitempty"`
	// Analysis, when set, judges each new version here while it rolls
	// out: a canary step or rolling batch goes on only after a passing
	// verdict (docs/analysis.md).
	Analysis *Analysis `json:"analysis,omitempty"`
}

// imageRepo matches an image repository without tag or digest.
var imageRepo = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$|^[a-z0-9]+([._-][a-z0-9]+)*$`)

// DefaultHealthPath is the health path when an application sets none.
const DefaultHealthPath = "/healthz"

// StrategyOrDefault returns the environment's strategy with its defaults.
func (e EnvSettings) StrategyOrDefault() Strategy {
	if e.Strategy == nil {
		return Strategy{}.Resolved()
	}
	return e.Strategy.Resolved()
}

// ReplicaCount returns Replicas with the default applied.
func (e EnvSettings) ReplicaCount() int {
	if e.Replicas == nil {
		return DefaultReplicas
	}
	return *e.Replicas
}

// Status is what the system records about an application. It has no fields
// yet.
type Status struct{}

// Settings returns the application's settings in env, with defaults applied
// when the spec has no entry for it.
func (a Spec) Settings(env string) EnvSettings {
	s := a.Environments[env]
	n := s.ReplicaCount()
	s.Replicas = &n
	return s
}

// Default fills in the fields a user may leave out: replicas become
// DefaultReplicas.
func (a *Spec) Default() {
	for name, s := range a.Environments {
		if s.Replicas == nil {
			n := DefaultReplicas
			s.Replicas = &n
			a.Environments[name] = s
		}
	}
}

// Register adds the Application kind to s. Its validation applies defaults
// and writes them back into the decoded object.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    "Application",
		Plural:  "applications",
		Aliases: []string{"app", "apps"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(obj *resource.Object, spec any) error {
			a, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("application: spec has type %T, want *application.Spec", spec)
			}
			a.Default()
			if err := Validate(*a); err != nil {
				return err
			}
			return obj.SetSpec(a)
		},
		Declarative: true,
	})
}

// Validate checks an application on its own: at least one owner, valid
// and distinct sign-off kinds, a pipeline name, and valid per-environment
// settings. The error is a *resource.PathError naming the field at fault.
func Validate(a Spec) error {
	if len(a.Owners) == 0 {
		return resource.Errorf("spec.owners", "an application needs at least one owner, who answers for it (e.g. owners: [team-payments])")
	}
	seen := map[string]int{}
	for i, o := range a.Owners {
		path := fmt.Sprintf("spec.owners[%d]", i)
		switch {
		case o == "":
			return resource.Errorf(path, "owner %d is empty; name a user or team", i+1)
		case len(o) > maxOwner:
			return resource.Errorf(path, "owner is %d characters long; the limit is %d", len(o), maxOwner)
		case strings.IndexFunc(o, unicode.IsSpace) >= 0 || strings.IndexFunc(o, unicode.IsControl) >= 0:
			return resource.Errorf(path, "owner %q contains spaces or control characters; use a user name, team name or e-mail address", o)
		}
		if j, dup := seen[o]; dup {
			return resource.Errorf(path, "owner %q is listed twice (also owner %d); remove one", o, j+1)
		}
		seen[o] = i
	}
	seenSignoff := map[string]int{}
	for i, k := range a.Signoffs {
		path := fmt.Sprintf("spec.signoffs[%d]", i)
		if err := resource.ValidateName(k); err != nil {
			return resource.Errorf(path, "sign-off kind %v (e.g. accessibility, compliance)", err)
		}
		if j, dup := seenSignoff[k]; dup {
			return resource.Errorf(path, "sign-off kind %q is listed twice (also signoffs[%d]); remove one", k, j)
		}
		seenSignoff[k] = i
	}
	if a.Pipeline == "" {
		return resource.Errorf("spec.pipeline", "pipeline is required: name the Pipeline this application's releases travel (e.g. pipeline: default)")
	}
	if err := resource.ValidateName(a.Pipeline); err != nil {
		return resource.Errorf("spec.pipeline", "pipeline %v", err)
	}
	for _, env := range sortedKeys(a.Environments) {
		path := "spec.environments." + env
		if err := resource.ValidateName(env); err != nil {
			return resource.Errorf(path, "environment %v", err)
		}
		s := a.Environments[env]
		if r := s.ReplicaCount(); r < 0 || r > MaxReplicas {
			return resource.Errorf(path+".replicas", "replicas must be between 0 and %d, got %d", MaxReplicas, r)
		}
		if s.Listen != "" {
			if err := validateListen(s.Listen); err != nil {
				return resource.Errorf(path+".listen", "%v", err)
			}
		}
		if s.Strategy != nil {
			if err := ValidateStrategy(path+".strategy", *s.Strategy); err != nil {
				return err
			}
		}
		if s.HealthPath != "" && !strings.HasPrefix(s.HealthPath, "/") {
			return resource.Errorf(path+".healthPath", "healthPath %q must start with /", s.HealthPath)
		}
		if len(s.RollbackPlan) > 4000 {
			return resource.Errorf(path+".rollbackPlan", "the rollback plan is %d characters; at most 4000", len(s.RollbackPlan))
		}
		if len(s.Args) > 100 {
			return resource.Errorf(path+".args", "at most 100 arguments, got %d", len(s.Args))
		}
		for i, a := range s.Args {
			if len(a) > 4096 || strings.ContainsRune(a, 0) {
				return resource.Errorf(fmt.Sprintf("%s.args[%d]", path, i), "an argument must be at most 4096 bytes without NUL characters")
			}
		}
		if err := validateEnvVars(path+".env", s.Env, false); err != nil {
			return err
		}
		if err := validateEnvVars(path+".secretEnv", s.SecretEnv, true); err != nil {
			return err
		}
		if s.Analysis != nil {
			if err := ValidateAnalysis(path+".analysis", *s.Analysis); err != nil {
				return err
			}
		}
		if s.Image != "" && !imageRepo.MatchString(s.Image) {
			return resource.Errorf(path+".image", "image %q is not a repository such as registry.example/team/shop (no tag or digest: the release's digest is added)", s.Image)
		}
	}
	return nil
}

// validateEnvVars checks environment variable names (and, for secretEnv,
// that the values name server variables).
func validateEnvVars(path string, m map[string]string, refs bool) error {
	if len(m) > 200 {
		return resource.Errorf(path, "at most 200 variables, got %d", len(m))
	}
	for _, k := range sortedKeys(m) {
		if !envName.MatchString(k) || k == "PORT" {
			return resource.Errorf(path+"."+k, "%q is not a usable environment variable name (letters, digits and _, not starting with a digit; PORT is set by the runtime)", k)
		}
		v := m[k]
		switch {
		case refs && !envName.MatchString(v):
			return resource.Errorf(path+"."+k, "secretEnv values name a variable of the airlock server holding the secret (e.g. SHOP_DB_PASSWORD), not the secret itself")
		case len(v) > 4096:
			return resource.Errorf(path+"."+k, "the value is %d bytes; at most 4096", len(v))
		}
	}
	return nil
}

func validateListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %q is not host:port; write e.g. %q or %q (IPv6 in brackets: %q)", addr, "127.0.0.1:8080", ":8080", "[::1]:8080")
	}
	if strings.IndexFunc(host, unicode.IsSpace) >= 0 {
		return fmt.Errorf("listen %q: host %q contains spaces", addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("listen %q: port %q must be a number from 1 to 65535", addr, port)
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Pipeline is what Check needs of a pipeline; pipeline.Spec has it. (The
// application package does not import pipeline: pipeline imports gate,
// which imports application.)
type Pipeline interface {
	Index(env string) int
	Environments() []string
}

// Check checks an application against the pipelines that exist (keyed by
// name, e.g. a map[string]pipeline.Spec): its pipeline exists, and every
// environment it has settings for is a stage of that pipeline. The error is
// a *resource.PathError.
func Check[P Pipeline](a Spec, pipelines map[string]P) error {
	p, ok := pipelines[a.Pipeline]
	if !ok {
		return resource.Errorf("spec.pipeline", "pipeline %q does not exist; known pipelines: %s (create it first, or fix the name)", a.Pipeline, list(sortedKeys(pipelines)))
	}
	for _, env := range sortedKeys(a.Environments) {
		if p.Index(env) < 0 {
			return resource.Errorf("spec.environments."+env,
				"environment %q is not a stage of pipeline %q, whose stages are %s; set settings only for those, or add the environment to the pipeline", env, a.Pipeline, list(p.Environments()))
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
