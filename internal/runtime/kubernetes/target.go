package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/airlock-dev/airlock/internal/rollout"
)

// Target runs applications of one environment on one cluster namespace.
type Target struct {
	Client *Client
	Config Config

	mu      sync.Mutex
	drift   map[string][]string // app → what was found since the last Observe
	applied map[string]applied  // Deployment name → what airlock last wrote
}

// applied is what airlock last wrote to a Deployment's fields people edit.
type applied struct{ replicas, image string }

func (t *Target) selector(app, env string) string {
	return fmt.Sprintf("%s=%s,%s=%s,%s=%s", ManagedByLabel, ManagedBy, AppLabel, app, EnvironmentLabel, env)
}

// Apply makes the namespace hold d's objects: each written with
// server-side apply, the versions d no longer lists deleted. Before
// writing a Deployment it compares the live one with what airlock wants
// (replicas, image) and records any difference as drift; the apply
// reverts it (self-heal) unless d.Runtime.KeepDrift.
func (t *Target) Apply(ctx context.Context, d rollout.Desired) error {
	objs, err := Build(d, d.Runtime.Image, t.Config)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, obj := range objs {
		name := obj["metadata"].(map[string]any)["name"].(string)
		keep[obj["kind"].(string)+"/"+name] = true
		if obj["kind"] == deploymentKind.kind {
			found, err := t.driftOf(ctx, name)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				how := "; reverted"
				if d.Runtime.KeepDrift {
					how = "; left in place (keepDrift)"
				}
				for i := range found {
					found[i] += how
				}
				t.note(d.App, found...)
				if d.Runtime.KeepDrift {
					continue
				}
			}
		}
		if _, err := t.Client.Apply(ctx, obj); err != nil {
			return err
		}
		if obj["kind"] == deploymentKind.kind {
			t.mu.Lock()
			if t.applied == nil {
				t.applied = map[string]applied{}
			}
			t.applied[name] = applied{fmt.Sprint(obj["spec"].(map[string]any)["replicas"]), image(obj)}
			t.mu.Unlock()
		}
	}
	// What airlock labelled for this application and is no longer wanted
	// goes — but never before what replaces it is ready: a Deployment
	// from a canary stays until the rolling update's Deployment (or the
	// other way round) has all its replicas ready.
	deps, err := t.Client.List(ctx, deploymentKind, t.Config.Namespace, t.selector(d.App, d.Environment))
	if err != nil {
		return err
	}
	for _, it := range deps {
		name := it["metadata"].(map[string]any)["name"].(string)
		if keep["Deployment/"+name] && toInt(dig(it, "status", "readyReplicas")) < toInt(dig(it, "spec", "replicas")) {
			return nil // the rest once it is ready; the reconciler applies again
		}
	}
	for _, k := range []kindInfo{deploymentKind, serviceKind} {
		items := deps
		if k != deploymentKind {
			if items, err = t.Client.List(ctx, k, t.Config.Namespace, t.selector(d.App, d.Environment)); err != nil {
				return err
			}
		}
		for _, it := range items {
			name := it["metadata"].(map[string]any)["name"].(string)
			if !keep[k.kind+"/"+name] {
				if err := t.Client.Delete(ctx, k, t.Config.Namespace, name); err != nil {
					return err
				}
			}
		}
	}
	if t.Config.Traffic != TrafficService && !keep[httpRouteKind.kind+"/"+Name(d.App)] {
		// Delete treats a 404 (also: no HTTPRoute kind in the cluster) as gone.
		if err := t.Client.Delete(ctx, httpRouteKind, t.Config.Namespace, Name(d.App)); err != nil {
			return err
		}
	}
	return nil
}

// driftOf compares a live Deployment with what airlock last wrote to it
// (replicas, the container image: the fields a person is likely to edit
// by hand). A Deployment airlock has not written since it started is not
// compared.
func (t *Target) driftOf(ctx context.Context, name string) ([]string, error) {
	t.mu.Lock()
	last, known := t.applied[name]
	t.mu.Unlock()
	if !known {
		return nil, nil
	}
	live, err := t.Client.Get(ctx, deploymentKind, t.Config.Namespace, name)
	if errors.Is(err, ErrNotFound) {
		return []string{fmt.Sprintf("Deployment %s was deleted", name)}, nil
	}
	if err != nil {
		return nil, err
	}
	var found []string
	if got := fmt.Sprint(dig(live, "spec", "replicas")); got != last.replicas {
		found = append(found, fmt.Sprintf("Deployment %s: replicas %s, airlock set %s", name, got, last.replicas))
	}
	if got := image(live); got != last.image {
		found = append(found, fmt.Sprintf("Deployment %s: image %s, airlock set %s", name, got, last.image))
	}
	return found, nil
}

func image(dep Object) string {
	cs, _ := dig(dep, "spec", "template", "spec", "containers").([]any)
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok && m["name"] == "app" {
			s, _ := m["image"].(string)
			return s
		}
	}
	return ""
}

// dig reads a nested field of a JSON-shaped object (nil when absent).
func dig(o map[string]any, path ...string) any {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (t *Target) note(app string, found ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.drift == nil {
		t.drift = map[string][]string{}
	}
	t.drift[app] = append(t.drift[app], found...)
}

// Drift returns and forgets the drift found on app's objects since the
// last call, each with whether it was reverted.
func (t *Target) Drift(app string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.drift[app]
	delete(t.drift, app)
	sort.Strings(out)
	return out
}

// Observe reads the versions' Deployments (ready replicas) and their
// Pods (a container waiting in CrashLoopBackOff after 3 restarts fails
// the version). On Kubernetes the readiness probe is the smoke check: a
// version with a ready replica counts as smoke-tested.
func (t *Target) Observe(ctx context.Context, app, env string, candidate, stable *rollout.Version) (rollout.Observation, error) {
	var obs rollout.Observation
	var err error
	if candidate != nil && stable != nil {
		if dep, err := t.Client.Get(ctx, deploymentKind, t.Config.Namespace, Name(app)); err == nil && dig(dep, "metadata", "labels", RollingLabel) == "true" {
			obs.Candidate, obs.Stable = rollingState(dep, candidate.Version)
			obs.Drift = t.Drift(app)
			return obs, nil
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return obs, err
		}
	}
	if candidate != nil {
		if obs.Candidate, err = t.state(ctx, app, env, candidate.Version); err != nil {
			return obs, err
		}
	}
	if stable != nil {
		if obs.Stable, err = t.state(ctx, app, env, stable.Version); err != nil {
			return obs, err
		}
	}
	obs.Drift = t.Drift(app)
	return obs, nil
}

func (t *Target) state(ctx context.Context, app, env, version string) (rollout.VersionState, error) {
	var vs rollout.VersionState
	dep, err := t.Client.Get(ctx, deploymentKind, t.Config.Namespace, Name(app, version))
	if errors.Is(err, ErrNotFound) {
		return vs, nil
	}
	if err != nil {
		return vs, err
	}
	vs.Running = toInt(dig(dep, "status", "replicas"))
	vs.Healthy = toInt(dig(dep, "status", "readyReplicas"))
	if vs.Healthy > 0 {
		ok := true
		vs.SmokeOK = &ok
	}
	pods, err := t.Client.List(ctx, podKind, t.Config.Namespace, t.selector(app, env)+","+VersionLabel+"="+Name(version))
	if err != nil {
		return vs, err
	}
	for _, p := range pods {
		cs, _ := dig(p, "status", "containerStatuses").([]any)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			reason, _ := dig(m, "state", "waiting", "reason").(string)
			if reason == "CrashLoopBackOff" && toInt(m["restartCount"]) >= 3 {
				vs.Failed = true
				vs.Reason = fmt.Sprintf("pod %v crashes in a loop (%d restarts)", dig(p, "metadata", "name"), toInt(m["restartCount"]))
			}
			if reason == "ImagePullBackOff" || reason == "ErrImagePull" || reason == "InvalidImageName" {
				vs.Failed = true
				vs.Reason = fmt.Sprintf("pod %v cannot pull its image (%s)", dig(p, "metadata", "name"), strings.ToLower(reason))
			}
		}
	}
	return vs, nil
}

var podKind = kindInfo{"v1", "Pod", "", "pods"}

func toInt(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

// rollingState reads a rolling update's progress from its Deployment: the
// pods of the version its template names (updated, and ready as far as
// the ready count allows) and the others. Until the controller has seen
// the latest template (observedGeneration), no pod counts as updated.
func rollingState(dep Object, candidate string) (cand, stable rollout.VersionState) {
	replicas := toInt(dig(dep, "status", "replicas"))
	updated := toInt(dig(dep, "status", "updatedReplicas"))
	ready := toInt(dig(dep, "status", "readyReplicas"))
	if toInt(dig(dep, "status", "observedGeneration")) < toInt(dig(dep, "metadata", "generation")) {
		updated = 0
	}
	newReady := min(updated, ready)
	moving := rollout.VersionState{Running: updated, Healthy: newReady}
	rest := rollout.VersionState{Running: max(0, replicas-updated), Healthy: max(0, ready-newReady)}
	if newReady > 0 {
		ok := true
		moving.SmokeOK = &ok
	}
	if dig(dep, "spec", "template", "metadata", "labels", VersionLabel) == Name(candidate) {
		return moving, rest
	}
	return rest, moving // rolled back: the template names the stable version
}
