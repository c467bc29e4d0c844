// Package kubernetes is the Kubernetes runtime target: it drives an
// existing cluster's API server instead of running processes itself.
// Per version of an application in an environment it keeps a Deployment
// and a Service; traffic is split by weight through a Gateway API
// HTTPRoute, or (traffic: service) moved at once by switching the
// application's Service selector. Objects are written with server-side
// apply, airlock as field manager, and carry airlock's labels: airlock
// owns only what it labels.
//
// It speaks the API server's REST API directly (no client library): the
// few calls it needs are a PATCH (apply), a GET, a list by label and a
// DELETE.
package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/internal/rollout"
)

// Labels airlock puts on what it owns.
const (
	ManagedByLabel   = "app.kubernetes.io/managed-by"
	ManagedBy        = "airlock"
	AppLabel         = "airlock.dev/app"
	EnvironmentLabel = "airlock.dev/environment"
	VersionLabel     = "airlock.dev/version"
)

// Traffic modes.
const (
	TrafficGateway = "gateway" // HTTPRoute backendRefs weighted per version
	TrafficService = "service" // the Service selector names one version
)

// Config is where and how an environment's applications run.
type Config struct {
	Namespace string
	// Traffic is gateway (the default) or service.
	Traffic string
	// Gateway is the parent of the HTTPRoutes (traffic: gateway).
	Gateway ParentRef
	// Port is the port the application serves on in its container (it
	// also gets it as PORT); default 8080.
	Port int
}

// ParentRef names a Gateway (and optionally its listener).
type ParentRef struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	SectionName string `json:"sectionName,omitempty"`
}

// Object is a Kubernetes object as JSON-shaped maps.
type Object = map[string]any

// Kind and resource path segments of the objects airlock writes.
type kindInfo struct{ apiVersion, kind, group, resource string }

var (
	deploymentKind = kindInfo{"apps/v1", "Deployment", "apps", "deployments"}
	serviceKind    = kindInfo{"v1", "Service", "", "services"}
	httpRouteKind  = kindInfo{"gateway.networking.k8s.io/v1", "HTTPRoute", "gateway.networking.k8s.io", "httproutes"}
)

var dns1123 = regexp.MustCompile(`[^a-z0-9-]+`)

// Name returns a DNS-1123 label (at most 63 characters) made of parts: lower
// case, other characters as '-', shortened with a hash when too long.
func Name(parts ...string) string {
	s := strings.Trim(dns1123.ReplaceAllString(strings.ToLower(strings.Join(parts, "-")), "-"), "-")
	if len(s) <= 63 && s != "" {
		return s
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return strings.Trim(s[:min(len(s), 52)], "-") + "-" + hex.EncodeToString(sum[:])[:10]
}

func labels(app, env, version string) map[string]any {
	l := map[string]any{ManagedByLabel: ManagedBy, AppLabel: app, EnvironmentLabel: env}
	if version != "" {
		l[VersionLabel] = Name(version)
	}
	return l
}

func meta(name, ns string, l map[string]any) map[string]any {
	return map[string]any{"name": name, "namespace": ns, "labels": l}
}

// Build returns the objects d needs in cfg's namespace: a Deployment and a
// Service per version, the application's Service, and with traffic:
// gateway an HTTPRoute weighting the versions' Services. image is the
// repository the release digests belong to. It is pure.
func Build(d rollout.Desired, image string, cfg Config) ([]Object, error) {
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	if image == "" {
		return nil, fmt.Errorf("%s in %s runs on Kubernetes and needs an image repository (environments.%s.image in the Application)", d.App, d.Environment, d.Environment)
	}
	if d.Rolling != nil {
		return buildRolling(d, image, cfg)
	}
	var out []Object
	var backends []any
	serving := ""
	best := -1
	for _, v := range d.Versions {
		rt := d.Runtime
		if v.Runtime != nil {
			rt = *v.Runtime
		}
		if len(rt.SecretEnv) > 0 {
			return nil, fmt.Errorf("%s %s: secretEnv names variables of the airlock server, which do not reach a cluster; reference a Kubernetes Secret from the image's own configuration instead", d.App, v.Version.Version)
		}
		container, err := containerOf(d, v, rt, image, cfg)
		if err != nil {
			return nil, err
		}
		name := Name(d.App, v.Version.Version)
		l := labels(d.App, d.Environment, v.Version.Version)
		selector := labels(d.App, d.Environment, v.Version.Version)
		delete(selector, ManagedByLabel)
		out = append(out, Object{
			"apiVersion": deploymentKind.apiVersion, "kind": deploymentKind.kind,
			"metadata": meta(name, cfg.Namespace, l),
			"spec": map[string]any{
				"replicas": v.Replicas,
				"selector": map[string]any{"matchLabels": selector},
				"template": map[string]any{"metadata": map[string]any{"labels": l}, "spec": map[string]any{"containers": []any{container}}},
			},
		}, Object{
			"apiVersion": serviceKind.apiVersion, "kind": serviceKind.kind,
			"metadata": meta(name, cfg.Namespace, l),
			"spec":     map[string]any{"selector": selector, "ports": []any{map[string]any{"name": "http", "port": 80, "targetPort": "http"}}},
		})
		backends = append(backends, map[string]any{"name": name, "port": 80, "weight": v.Weight})
		if v.Weight > best {
			best, serving = v.Weight, v.Version.Version
		}
	}
	// The application's Service: all of its versions with traffic:
	// gateway (the route splits), the one with the most weight with
	// traffic: service (switched at once).
	sel := labels(d.App, d.Environment, "")
	delete(sel, ManagedByLabel)
	if cfg.Traffic == TrafficService && serving != "" {
		sel[VersionLabel] = Name(serving)
	}
	out = append(out, Object{
		"apiVersion": serviceKind.apiVersion, "kind": serviceKind.kind,
		"metadata": meta(Name(d.App), cfg.Namespace, labels(d.App, d.Environment, "")),
		"spec":     map[string]any{"selector": sel, "ports": []any{map[string]any{"name": "http", "port": 80, "targetPort": "http"}}},
	})
	if cfg.Traffic != TrafficService && len(backends) > 0 {
		out = append(out, route(d, cfg, backends))
	}
	return out, nil
}

// containerOf is the container of version v.
func containerOf(d rollout.Desired, v rollout.DesiredVersion, rt rollout.Runtime, image string, cfg Config) (map[string]any, error) {
	digest := v.Digest
	if !strings.HasPrefix(digest, "sha256:") {
		return nil, fmt.Errorf("%s %s: digest %q is not sha256:<hex>", d.App, v.Version.Version, digest)
	}
	env := []any{
		map[string]any{"name": "PORT", "value": fmt.Sprint(cfg.Port)},
		map[string]any{"name": "AIRLOCK_APP", "value": d.App},
		map[string]any{"name": "AIRLOCK_ENVIRONMENT", "value": d.Environment},
		map[string]any{"name": "AIRLOCK_VERSION", "value": v.Version.Version},
	}
	for _, k := range slices.Sorted(maps.Keys(rt.Env)) {
		env = append(env, map[string]any{"name": k, "value": rt.Env[k]})
	}
	container := map[string]any{
		"name": "app", "image": image + "@" + digest, "env": env,
		"ports": []any{map[string]any{"name": "http", "containerPort": cfg.Port}},
	}
	if len(rt.Args) > 0 {
		container["args"] = slices.Clone(rt.Args)
	}
	if rt.HealthPath != "" {
		container["readinessProbe"] = map[string]any{"httpGet": map[string]any{"path": rt.HealthPath, "port": "http"}, "periodSeconds": 2}
	}
	return container, nil
}

// RollingLabel marks the one Deployment of an application whose versions
// are replaced by Kubernetes' own rolling update.
const RollingLabel = "airlock.dev/rolling"

// buildRolling returns the objects of a rolling update done by the
// Deployment itself: one Deployment for the application running the
// version the update moves to (the candidate, or the stable version when
// it is rolled back), with the strategy's surge and unavailability, paused
// when the rollout holds; the application's Service; and with traffic:
// gateway an HTTPRoute to that Service.
func buildRolling(d rollout.Desired, image string, cfg Config) ([]Object, error) {
	var target *rollout.DesiredVersion
	for i, v := range d.Versions {
		if v.Version.Version == d.Rolling.Candidate && v.Replicas > 0 {
			target = &d.Versions[i]
		}
	}
	if target == nil {
		for i, v := range d.Versions {
			if target == nil || v.Replicas > target.Replicas {
				target = &d.Versions[i]
			}
		}
	}
	if target == nil {
		return nil, nil // nothing runs: the cleanup removes what did
	}
	rt := d.Runtime
	if target.Runtime != nil {
		rt = *target.Runtime
	}
	if len(rt.SecretEnv) > 0 {
		return nil, fmt.Errorf("%s %s: secretEnv names variables of the airlock server, which do not reach a cluster; reference a Kubernetes Secret from the image's own configuration instead", d.App, target.Version.Version)
	}
	container, err := containerOf(d, *target, rt, image, cfg)
	if err != nil {
		return nil, err
	}
	name := Name(d.App)
	l := labels(d.App, d.Environment, target.Version.Version)
	l[RollingLabel] = "true"
	sel := map[string]any{AppLabel: d.App, EnvironmentLabel: d.Environment, RollingLabel: "true"}
	depLabels := labels(d.App, d.Environment, "")
	depLabels[RollingLabel] = "true"
	out := []Object{{
		"apiVersion": deploymentKind.apiVersion, "kind": deploymentKind.kind,
		"metadata": meta(name, cfg.Namespace, depLabels),
		"spec": map[string]any{
			"replicas": d.Rolling.Replicas,
			"paused":   d.Rolling.Paused,
			"selector": map[string]any{"matchLabels": sel},
			"strategy": map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": d.Rolling.MaxSurge, "maxUnavailable": d.Rolling.MaxUnavailable}},
			"template": map[string]any{"metadata": map[string]any{"labels": l}, "spec": map[string]any{"containers": []any{container}}},
		},
	}}
	appSel := labels(d.App, d.Environment, "")
	delete(appSel, ManagedByLabel)
	out = append(out, Object{
		"apiVersion": serviceKind.apiVersion, "kind": serviceKind.kind,
		"metadata": meta(name, cfg.Namespace, labels(d.App, d.Environment, "")),
		"spec":     map[string]any{"selector": appSel, "ports": []any{map[string]any{"name": "http", "port": 80, "targetPort": "http"}}},
	})
	if cfg.Traffic != TrafficService {
		out = append(out, route(d, cfg, []any{map[string]any{"name": name, "port": 80, "weight": 100}}))
	}
	return out, nil
}

// route is the application's HTTPRoute with backends.
func route(d rollout.Desired, cfg Config, backends []any) Object {
	parent := map[string]any{"name": cfg.Gateway.Name}
	if cfg.Gateway.Namespace != "" {
		parent["namespace"] = cfg.Gateway.Namespace
	}
	if cfg.Gateway.SectionName != "" {
		parent["sectionName"] = cfg.Gateway.SectionName
	}
	return Object{
		"apiVersion": httpRouteKind.apiVersion, "kind": httpRouteKind.kind,
		"metadata": meta(Name(d.App), cfg.Namespace, labels(d.App, d.Environment, "")),
		"spec":     map[string]any{"parentRefs": []any{parent}, "rules": []any{map[string]any{"backendRefs": backends}}},
	}
}
