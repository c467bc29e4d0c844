package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/runtime/kubernetes"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/store"
)

// runtimes sends each rollout to its environment's runtime: the local
// runtime, or the namespace of a Kubernetes cluster the Environment names.
// A Kubernetes target is built from the Environment's spec and rebuilt
// when the Environment changes.
type runtimes struct {
	store store.Reader
	local *local.Target

	mu   sync.Mutex
	kube map[string]kubeTarget // environment → its target
}

type kubeTarget struct {
	rev    int64
	target *kubernetes.Target
}

func newRuntimes(st store.Reader, l *local.Target) *runtimes {
	return &runtimes{store: st, local: l, kube: map[string]kubeTarget{}}
}

func (r *runtimes) target(ctx context.Context, env string) (rollout.Target, error) {
	o, err := r.store.Get(ctx, "Environment", env)
	if errors.Is(err, store.ErrNotFound) {
		return r.local, nil
	}
	if err != nil {
		return nil, err
	}
	var spec environment.Spec
	if err := o.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	if spec.RuntimeName() != environment.RuntimeKubernetes || spec.Kubernetes == nil {
		return r.local, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if kt, ok := r.kube[env]; ok && kt.rev == o.Metadata.Revision {
		return kt.target, nil
	}
	k := spec.Kubernetes
	var client *kubernetes.Client
	if k.InCluster {
		client, err = kubernetes.InCluster(kubernetes.ServiceAccountDir, os.Getenv)
	} else {
		client, err = kubernetes.FromKubeconfig(k.Kubeconfig, k.Context)
	}
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", env, err)
	}
	cfg := kubernetes.Config{Namespace: k.Namespace, Traffic: k.Traffic}
	if g := k.Gateway; g != nil {
		cfg.Gateway = kubernetes.ParentRef{Name: g.Name, Namespace: g.Namespace, SectionName: g.SectionName}
	}
	t := &kubernetes.Target{Client: client, Config: cfg}
	r.kube[env] = kubeTarget{rev: o.Metadata.Revision, target: t}
	return t, nil
}

func (r *runtimes) Apply(ctx context.Context, d rollout.Desired) error {
	t, err := r.target(ctx, d.Environment)
	if err != nil {
		return err
	}
	return t.Apply(ctx, d)
}

func (r *runtimes) Observe(ctx context.Context, app, env string, candidate, stable *rollout.Version) (rollout.Observation, error) {
	t, err := r.target(ctx, env)
	if err != nil {
		return rollout.Observation{}, err
	}
	return t.Observe(ctx, app, env, candidate, stable)
}
