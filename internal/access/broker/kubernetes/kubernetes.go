// Package kubernetes is the just-in-time access broker for Kubernetes: an
// approved access becomes RoleBindings of the role's ClusterRoles (its
// grants) in one namespace, for the requester's own identity (subject:
// user) or for a ServiceAccount made for the access whose short-lived
// token is the credential (subject: serviceAccount). Revocation deletes
// what the grant made; deleting the ServiceAccount also invalidates its
// tokens. Everything carries the label airlock.dev/access=<access ID>,
// so a retried grant or revocation finds its own work.
package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	kube "github.com/airlock-dev/airlock/internal/runtime/kubernetes"
)

// Type is the broker type name.
const Type = "kubernetes"

// AccessLabel marks what a grant made.
const AccessLabel = "airlock.dev/access"

// Subjects.
const (
	SubjectUser           = "user"
	SubjectServiceAccount = "serviceAccount"
)

// Config is a resource's broker.kubernetes configuration.
type Config struct {
	// Kubeconfig (an absolute path on the airlock server) and Context
	// name the cluster and an identity allowed to manage RoleBindings
	// (and ServiceAccounts and their tokens, for subject serviceAccount)
	// in Namespace.
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context,omitempty"`
	Namespace  string `json:"namespace"`
	// Subject is user (the default: the requester's own identity, as
	// the cluster authenticates it) or serviceAccount.
	Subject string `json:"subject,omitempty"`
}

func init() {
	broker.Register(Type, func(raw json.RawMessage, _ broker.Env) (broker.Broker, error) {
		cfg, err := ParseConfig(raw)
		if err != nil {
			return nil, err
		}
		c, err := kube.FromKubeconfig(cfg.Kubeconfig, cfg.Context)
		if err != nil {
			return nil, err
		}
		return &Broker{Client: c, Config: cfg, Now: time.Now}, nil
	})
	broker.RegisterValidator(Type, func(raw json.RawMessage) error {
		_, err := ParseConfig(raw)
		return err
	})
}

// ParseConfig decodes and checks a configuration strictly.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return cfg, fmt.Errorf("kubernetes broker: unknown field %s in configuration; the fields are kubeconfig, context, namespace and subject", name)
		}
		return cfg, fmt.Errorf("kubernetes broker: %w", err)
	}
	switch {
	case !filepath.IsAbs(cfg.Kubeconfig):
		return cfg, fmt.Errorf("kubernetes broker: kubeconfig must be an absolute path on the airlock server, got %q", cfg.Kubeconfig)
	case cfg.Namespace == "" || kube.Name(cfg.Namespace) != cfg.Namespace:
		return cfg, fmt.Errorf("kubernetes broker: namespace %q is not a DNS label", cfg.Namespace)
	case cfg.Subject != "" && cfg.Subject != SubjectUser && cfg.Subject != SubjectServiceAccount:
		return cfg, fmt.Errorf("kubernetes broker: subject %q is not user or serviceAccount", cfg.Subject)
	}
	if cfg.Subject == "" {
		cfg.Subject = SubjectUser
	}
	return cfg, nil
}

// Broker grants access on one cluster namespace.
type Broker struct {
	Client *kube.Client
	Config Config
	Now    func() time.Time
}

func (b *Broker) path(resource, name string) string {
	base := "/apis/rbac.authorization.k8s.io/v1/namespaces/" + url.PathEscape(b.Config.Namespace) + "/" + resource
	if resource == "serviceaccounts" {
		base = "/api/v1/namespaces/" + url.PathEscape(b.Config.Namespace) + "/serviceaccounts"
	}
	if name == "" {
		return base
	}
	return base + "/" + url.PathEscape(name)
}

// Grant binds each ClusterRole in g.Grants in the namespace, for the
// requester or for a ServiceAccount of this access whose token, valid
// until g.NotAfter, is the credential.
func (b *Broker) Grant(ctx context.Context, g broker.Grant) (broker.Issued, error) {
	if len(g.Grants) == 0 {
		return broker.Issued{}, fmt.Errorf("kubernetes broker: role %s of %s grants no ClusterRole; list them in its grants", g.Role, g.Resource)
	}
	id := kube.Name("airlock-access", g.ID)
	labels := map[string]any{AccessLabel: kube.Name(g.ID), kube.ManagedByLabel: kube.ManagedBy}
	subject := map[string]any{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": g.Requester}
	if b.Config.Subject == SubjectServiceAccount {
		sa := kube.Object{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": id, "namespace": b.Config.Namespace, "labels": labels,
			"annotations": map[string]any{"airlock.dev/requester": g.Requester, "airlock.dev/not-after": g.NotAfter.UTC().Format(time.RFC3339)}}}
		if _, err := b.Client.ApplyPath(ctx, b.path("serviceaccounts", id), sa); err != nil {
			return broker.Issued{}, err
		}
		subject = map[string]any{"kind": "ServiceAccount", "name": id, "namespace": b.Config.Namespace}
	}
	var names []string
	for i, role := range g.Grants {
		name := kube.Name("airlock-access", g.ID, fmt.Sprint(i))
		rb := kube.Object{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]any{"name": name, "namespace": b.Config.Namespace, "labels": labels,
				"annotations": map[string]any{"airlock.dev/requester": g.Requester, "airlock.dev/not-after": g.NotAfter.UTC().Format(time.RFC3339)}},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []any{subject}}
		if _, err := b.Client.ApplyPath(ctx, b.path("rolebindings", name), rb); err != nil {
			return broker.Issued{}, err
		}
		names = append(names, name)
	}
	issued := broker.Issued{Handle: b.Config.Namespace + "/" + strings.Join(names, ","), Credential: map[string]string{
		"server": b.Client.URL, "namespace": b.Config.Namespace}}
	if b.Config.Subject == SubjectUser {
		issued.Credential["user"] = g.Requester
		return issued, nil
	}
	// A token bound to the ServiceAccount, expiring with the access (the
	// API server's minimum is 10 minutes).
	secs := int64(max(10*time.Minute, g.NotAfter.Sub(b.Now())).Seconds())
	body, _ := json.Marshal(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": secs}})
	var tr struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if err := b.Client.Do(ctx, "POST", b.path("serviceaccounts", id)+"/token", "application/json", body, &tr); err != nil {
		return broker.Issued{}, err
	}
	if tr.Status.Token == "" {
		return broker.Issued{}, errors.New("kubernetes broker: the token request returned no token")
	}
	issued.Credential["token"] = tr.Status.Token
	return issued, nil
}

// Revoke deletes every RoleBinding (and the ServiceAccount, whose tokens
// die with it) labelled for this access; what is already gone is fine.
func (b *Broker) Revoke(ctx context.Context, g broker.Grant, _ string) error {
	sel := url.Values{"labelSelector": {AccessLabel + "=" + kube.Name(g.ID)}}.Encode()
	for _, res := range []string{"rolebindings", "serviceaccounts"} {
		var list struct {
			Items []struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		if err := b.Client.Do(ctx, "GET", b.path(res, "")+"?"+sel, "", nil, &list); err != nil {
			return err
		}
		for _, it := range list.Items {
			if err := b.Client.Do(ctx, "DELETE", b.path(res, it.Metadata.Name), "", nil, nil); err != nil && !errors.Is(err, kube.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
