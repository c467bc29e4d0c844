package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// ReleaseRequest is what CI sends to register a release.
type ReleaseRequest struct {
	App      string            `json:"app"`
	Version  string            `json:"version"`
	Artifact release.Artifact  `json:"artifact"`
	Commit   string            `json:"commit"`
	Authors  []string          `json:"authors,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// CreateRelease registers an immutable release of an existing application.
// The creator is the caller's identity, whatever the request says; a second
// release with the same application and version is a conflict.
func (s *Service) CreateRelease(ctx context.Context, actor store.Actor, req ReleaseRequest) (*resource.Object, error) {
	if err := release.ValidateVersion(req.Version); err != nil {
		return nil, &InvalidError{Msg: err.Error()}
	}
	if err := resource.ValidateName(req.App); err != nil {
		return nil, &InvalidError{Msg: "app: " + err.Error()}
	}
	labels := map[string]string{}
	for k, v := range req.Labels {
		labels[k] = v
	}
	obj := &resource.Object{
		APIVersion: resource.APIVersion,
		Kind:       ReleaseKind,
		Metadata:   resource.Metadata{Name: release.Name(req.App, req.Version), Labels: labels},
	}
	spec := release.Spec{App: req.App, Version: req.Version, Artifact: req.Artifact, Commit: req.Commit, Authors: req.Authors}
	if err := obj.SetSpec(spec); err != nil {
		return nil, err
	}
	if err := prepareRelease(obj, actor.Name); err != nil {
		return nil, err
	}
	var created *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		if _, err := tx.Get(ctx, ApplicationKind, req.App); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &PolicyError{Msg: fmt.Sprintf("application %q does not exist; apply an Application named %q first", req.App, req.App)}
			}
			return err
		}
		if cur, err := tx.Get(ctx, ReleaseKind, obj.Metadata.Name); err == nil {
			var old release.Spec
			_ = cur.DecodeSpec(&old)
			return fmt.Errorf("release %s %s already exists (artifact %s, created by %s): %w; releases are immutable, register a new version",
				req.App, req.Version, old.Artifact.Digest, old.Creator, store.ErrConflict)
		}
		var err error
		created, err = tx.Create(ctx, obj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// prepareRelease sets the fields airlock owns on a Release (creator, app
// label) and validates it whole.
func prepareRelease(o *resource.Object, creator string) error {
	var spec release.Spec
	if err := o.DecodeSpec(&spec); err != nil {
		return &InvalidError{Msg: fmt.Sprintf("%s: %v", o.Ref(), err)}
	}
	if spec.Creator != "" && spec.Creator != creator {
		return &InvalidError{Msg: fmt.Sprintf("%s: spec.creator is recorded by airlock as the identity that registers the release (%s); remove it", o.Ref(), creator)}
	}
	spec.Creator = creator
	if o.Metadata.Labels == nil {
		o.Metadata.Labels = map[string]string{}
	}
	if v, ok := o.Metadata.Labels["app"]; ok && v != spec.App {
		return &InvalidError{Msg: fmt.Sprintf("%s: label app=%s does not match spec.app %q", o.Ref(), v, spec.App)}
	}
	o.Metadata.Labels["app"] = spec.App
	if err := o.SetSpec(spec); err != nil {
		return err
	}
	if err := resource.ValidateLabels(o.Metadata.Labels); err != nil {
		return &InvalidError{Msg: fmt.Sprintf("%s: %v", o.Ref(), err)}
	}
	if err := release.Validate(o.Metadata, spec); err != nil {
		return &InvalidError{Msg: fmt.Sprintf("%s: %v", o.Ref(), err)}
	}
	return nil
}
