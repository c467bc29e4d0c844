package environment

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Problem is one rule a set of environments breaks.
type Problem struct {
	Environment string // the environment at fault
	Other       string // the environment it conflicts with, when there is one
	Path        string // the field at fault in Environment's document, e.g. "spec.isolation.network"
	Rule        string // one of the Rule constants
	Message     string
}

// SetError lists every problem found in a set of environments, sorted by
// environment name, so a user can fix them all in one pass.
type SetError struct {
	Problems []Problem
}

func (e *SetError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = fmt.Sprintf("environment %q: %s: %s", p.Environment, p.Path, p.Message)
	}
	return strings.Join(lines, "\n")
}

// CheckSet checks the rules that span environments, on the whole set as it
// will be after a change (the caller passes stored and incoming
// environments together, keyed by name, inside its write transaction). now
// decides whether a waiver has expired.
//
// It re-checks every environment with Validate, then requires that:
//   - a production environment shares neither its network nor its
//     credential scope with any non-production environment;
//   - environments that share a runtime host claim no more isolation than
//     the host gives: when two or more environments use runtime local (one
//     machine, one OS user), every one of them declares level labels;
//   - no waiver has expired.
//
// Any broken rule makes the error a *SetError listing all of them. Otherwise
// it returns the violations to record in each environment's status: a key
// for every environment, nil when it has none. A production environment
// below cluster level with a waiver gets one waived production-isolation
// violation.
func CheckSet(envs map[string]Spec, now time.Time) (map[string][]Violation, error) {
	names := make([]string, 0, len(envs))
	for n := range envs {
		names = append(names, n)
	}
	sort.Strings(names)

	var problems []Problem
	valid := make(map[string]bool, len(envs))
	for _, n := range names {
		err := Validate(envs[n])
		if err == nil {
			valid[n] = true
			continue
		}
		p := Problem{Environment: n, Path: "spec", Rule: RuleInvalid, Message: err.Error()}
		var pe *resource.PathError
		if errors.As(err, &pe) {
			p.Path, p.Message = pe.Path, pe.Msg
		}
		p.Rule = ruleOf(envs[n], p.Path)
		problems = append(problems, p)
	}
	for _, rule := range setRules {
		problems = append(problems, rule(names, envs, valid, now)...)
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Environment < problems[j].Environment })
		return nil, &SetError{Problems: problems}
	}

	out := make(map[string][]Violation, len(envs))
	for _, n := range names {
		s := envs[n]
		out[n] = nil
		if w := s.Isolation.Waiver; s.IsProduction() && w != nil && !s.Isolation.Level.AtLeast(MinimumProductionLevel) {
			until := ""
			if w.Expires != nil {
				until = " until " + w.Expires.UTC().Format(time.RFC3339)
			}
			out[n] = append(out[n], Violation{
				Rule:    RuleProductionIsolation,
				Waived:  true,
				Message: fmt.Sprintf("isolation level %s is below %s, waived%s: %s", s.Isolation.Level, MinimumProductionLevel, until, strings.TrimSpace(w.Reason)),
			})
		}
	}
	return out, nil
}

// ruleOf names the rule behind a Validate error, from the field at fault.
func ruleOf(s Spec, path string) string {
	switch {
	case path == "spec.data" && s.Data == DataProduction && !s.IsProduction():
		return RuleProductionData
	case path == "spec.isolation.level" && s.IsProduction() && s.Isolation.Level.Rank() >= 0:
		return RuleProductionIsolation
	}
	return RuleInvalid
}

// setRule finds the problems of one cross-environment rule. names is
// sorted; valid marks the environments that passed Validate (the others are
// already reported and skipped, so one mistake is not reported twice).
type setRule func(names []string, envs map[string]Spec, valid map[string]bool, now time.Time) []Problem

var setRules = []setRule{checkSharedScopes, checkSharedHost, checkSharedCluster, checkWaiverExpiry}

// clusterKey identifies the cluster a Kubernetes environment names.
func clusterKey(k *Kubernetes) string {
	if k.InCluster {
		return "in-cluster"
	}
	return k.Kubeconfig + "#" + k.Context
}

// checkSharedCluster: Kubernetes environments on one cluster (the same
// kubeconfig and context) claim at most namespace isolation (node needs
// separate node pools, which airlock cannot see, so it asks for cluster
// or above to be real), and in one namespace at most labels.
func checkSharedCluster(names []string, envs map[string]Spec, valid map[string]bool, _ time.Time) []Problem {
	type place struct{ cluster, ns string }
	byCluster := map[string][]string{}
	byNS := map[place][]string{}
	for _, n := range names {
		s := envs[n]
		if !valid[n] || s.RuntimeName() != RuntimeKubernetes || s.Kubernetes == nil {
			continue
		}
		c := clusterKey(s.Kubernetes)
		byCluster[c] = append(byCluster[c], n)
		byNS[place{c, s.Kubernetes.Namespace}] = append(byNS[place{c, s.Kubernetes.Namespace}], n)
	}
	var out []Problem
	for _, n := range names {
		s := envs[n]
		if !valid[n] || s.RuntimeName() != RuntimeKubernetes || s.Kubernetes == nil {
			continue
		}
		c := clusterKey(s.Kubernetes)
		switch same := byNS[place{c, s.Kubernetes.Namespace}]; {
		case len(same) > 1 && s.Isolation.Level != LevelLabels:
			out = append(out, Problem{Environment: n, Path: "spec.isolation.level", Rule: RuleSharedHost,
				Message: fmt.Sprintf("level %s claims more isolation than one namespace gives: environments %s share namespace %s of one cluster; give each its own namespace, or declare level labels",
					s.Isolation.Level, quoteList(same), s.Kubernetes.Namespace)})
		case len(byCluster[c]) > 1 && s.Isolation.Level.AtLeast(LevelNode):
			out = append(out, Problem{Environment: n, Path: "spec.isolation.level", Rule: RuleSharedHost,
				Message: fmt.Sprintf("level %s claims more isolation than one cluster gives: environments %s run on the same cluster (kubeconfig %s, context %q); move it to a cluster of its own, or declare level namespace",
					s.Isolation.Level, quoteList(byCluster[c]), s.Kubernetes.Kubeconfig, s.Kubernetes.Context)})
		}
	}
	return out
}

func checkSharedScopes(names []string, envs map[string]Spec, valid map[string]bool, _ time.Time) []Problem {
	var out []Problem
	for _, p := range names {
		prod := envs[p]
		if !valid[p] || !prod.IsProduction() {
			continue
		}
		for _, n := range names {
			other := envs[n]
			if !valid[n] || other.IsProduction() {
				continue
			}
			if prod.Isolation.Network == other.Isolation.Network {
				out = append(out, Problem{
					Environment: p, Other: n, Path: "spec.isolation.network", Rule: RuleSharedNetwork,
					Message: fmt.Sprintf("production environment %q shares network scope %q with %s environment %q; production and non-production must not share a network (CIS 16.8): give one of them its own network scope",
						p, prod.Isolation.Network, other.Tier, n),
				})
			}
			if prod.Isolation.Credentials == other.Isolation.Credentials {
				out = append(out, Problem{
					Environment: p, Other: n, Path: "spec.isolation.credentials", Rule: RuleSharedCredentials,
					Message: fmt.Sprintf("production environment %q shares credential scope %q with %s environment %q; production credentials must never be available outside production (CIS 16.8): give one of them its own credential scope",
						p, prod.Isolation.Credentials, other.Tier, n),
				})
			}
		}
	}
	return out
}

func checkSharedHost(names []string, envs map[string]Spec, valid map[string]bool, _ time.Time) []Problem {
	var local []string
	for _, n := range names {
		if envs[n].RuntimeName() == RuntimeLocal {
			local = append(local, n)
		}
	}
	if len(local) < 2 {
		return nil
	}
	var out []Problem
	for _, n := range local {
		s := envs[n]
		if !valid[n] || s.Isolation.Level == LevelLabels {
			continue
		}
		fix := `declare "level: labels"`
		if s.IsProduction() {
			fix += " and, since this is a production environment, add isolation.waiver with a reason accepting the weaker isolation on the record"
		}
		out = append(out, Problem{
			Environment: n, Path: "spec.isolation.level", Rule: RuleSharedHost,
			Message: fmt.Sprintf("level %s claims more isolation than runtime local gives: environments %s all run as processes of one OS user on this one machine, where each can read the others' files and ports, so nothing stronger than labels separates them; %s",
				s.Isolation.Level, quoteList(local), fix),
		})
	}
	return out
}

func checkWaiverExpiry(names []string, envs map[string]Spec, valid map[string]bool, now time.Time) []Problem {
	var out []Problem
	for _, n := range names {
		w := envs[n].Isolation.Waiver
		if !valid[n] || w == nil || w.Expires == nil || now.Before(*w.Expires) {
			continue
		}
		out = append(out, Problem{
			Environment: n, Path: "spec.isolation.waiver.expires", Rule: RuleWaiverExpired,
			Message: fmt.Sprintf("the isolation waiver expired at %s; raise isolation.level to %s or stronger, or renew the waiver with a later expires date and a current reason",
				w.Expires.UTC().Format(time.RFC3339), MinimumProductionLevel),
		})
	}
	return out
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
