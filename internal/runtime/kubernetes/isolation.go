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
	obj, err := c.do2(ctx, "/api/v1/namespaces/"+ns)
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
		types, _ := dig(p, "spec", "policyTypes").([]any)
		for _, t := range types {
			if t == "Ingress" {
				restricts = true
			}
		}
		if dig(p, "spec", "ingress") != nil && len(types) == 0 {
			restricts = true
		}
	}
	if !restricts {
		out = append(out, fmt.Sprintf("no NetworkPolicy in namespace %s restricts ingress, so pods of every other namespace (other environments too) reach its pods; add one that denies traffic from other environments' namespaces", ns))
	}
	return out, nil
}

func orNone(v any) any {
	if v == nil {
		return "none"
	}
	return v
}

// do2 GETs path as a JSON object.
func (c *Client) do2(ctx context.Context, path string) (Object, error) {
	var out Object
	err := c.do(ctx, "GET", path, "", nil, &out)
	return out, err
}
