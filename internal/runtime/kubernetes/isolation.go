package kubernetes

import (
	"context"
	"errors"
	"fmt"
)

var (
	namespaceKind     = kindInfo{"v1", "Namespace", "", "namespaces"}
	networkPolicyKind = kindInfo{"networking.k8s.io/v1", "NetworkPolicy", "networking.k8s.io", "networkpolicies"}
)

// CheckIsolation checks what the cluster shows of an environment's
// declared separation: its namespace exists and carries
// airlock.dev/environment=env, and from level namespace up a
// NetworkPolicy in it restricts ingress (without one, every other
// namespace reaches its pods). It returns what is wrong, for a person;
// none means the checks passed. It cannot see node or cluster boundaries:
// those are checked across environments (CheckSet).
func CheckIsolation(ctx context.Context, c *Client, env, ns, level string) ([]string, error) {
	obj, err := c.Get(ctx, namespaceKind, "", ns)
	if errors.Is(err, ErrNotFound) {
		return []string{fmt.Sprintf("namespace %s does not exist; create it with the label %s=%s", ns, EnvironmentLabel, env)}, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	if got := dig(obj, "metadata", "labels", EnvironmentLabel); got != env {
		out = append(out, fmt.Sprintf("namespace %s does not carry the label %s=%s (it has %v), so nothing marks it as %s's", ns, EnvironmentLabel, env, orNone(got), env))
	}
	if level == "labels" {
		return out, nil
	}
	pols, err := c.List(ctx, networkPolicyKind, ns, "")
	if err != nil {
		return nil, err
	}
	restricts := false
	for _, p := range pols {
		if isolating(p) {
			restricts = true
		}
	}
	if !restricts {
		out = append(out, fmt.Sprintf("no NetworkPolicy in namespace %s restricts ingress to all its pods, so pods of other namespaces (other environments too) reach them; add one selecting every pod (podSelector: {}) whose ingress rules admit only this environment's namespaces", ns))
	}
	return out, nil
}

func orNone(v any) any {
	if v == nil {
		return "none"
	}
	return v
}

// isolating reports whether a NetworkPolicy keeps other namespaces out of
// every pod of its namespace: it selects all pods, governs ingress, and
// none of its ingress rules admits everyone (a rule without from, or a
// peer selecting every namespace).
func isolating(p Object) bool {
	sel, _ := dig(p, "spec", "podSelector").(map[string]any)
	if len(sel) != 0 {
		return false
	}
	types, _ := dig(p, "spec", "policyTypes").([]any)
	ingress := len(types) == 0 // without policyTypes a policy governs ingress
	for _, t := range types {
		if t == "Ingress" {
			ingress = true
		}
	}
	if !ingress {
		return false
	}
	rules, _ := dig(p, "spec", "ingress").([]any)
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		from, _ := rule["from"].([]any)
		if len(from) == 0 {
			return false // from anywhere
		}
		for _, peer := range from {
			m, _ := peer.(map[string]any)
			if ns, ok := m["namespaceSelector"].(map[string]any); ok && len(ns) == 0 {
				return false // from every namespace
			}
		}
	}
	return true
}
