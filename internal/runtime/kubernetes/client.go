package kubernetes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// FieldManager is the name airlock's server-side applies carry.
const FieldManager = "airlock"

// maxResponse bounds one API response.
const maxResponse = 16 << 20

// Client calls one API server.
type Client struct {
	URL   string
	token string
	http  *http.Client
}

// ErrNotFound is a 404 from the API server.
var ErrNotFound = errors.New("not found")

// APIError is an API server's refusal.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("kubernetes: %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// Unwrap makes a 404 match ErrNotFound.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// NewClient returns a client of the API server at url with a bearer
// token; caPEM (nil: the system's roots) verifies its certificate.
func NewClient(apiURL, token string, caPEM []byte, cert *tls.Certificate) (*Client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("kubernetes: the API server address %q is not https://host[:port]", apiURL)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("kubernetes: the certificate authority of %s holds no PEM certificate", apiURL)
		}
		cfg.RootCAs = pool
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &Client{URL: strings.TrimRight(apiURL, "/"), token: token,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}}, nil
}

// kubeconfig is the part of a kubeconfig file airlock reads.
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
		} `json:"cluster"`
	} `json:"clusters"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster   string `json:"cluster"`
			User      string `json:"user"`
			Namespace string `json:"namespace"`
		} `json:"context"`
	} `json:"contexts"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string `json:"token"`
			TokenFile             string `json:"tokenFile"`
			ClientCertificateData string `json:"client-certificate-data"`
			ClientKeyData         string `json:"client-key-data"`
		} `json:"user"`
	} `json:"users"`
}

// FromKubeconfig returns a client for context (empty: the file's current
// context) of the kubeconfig at path. Only token and client-certificate
// users are understood; exec plugins are not.
func FromKubeconfig(path, context string) (*Client, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: read kubeconfig: %w", err)
	}
	if len(raw) > 1<<20 {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s is larger than 1 MiB", path)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", path, err)
	}
	if context == "" {
		context = kc.CurrentContext
	}
	var clusterName, userName string
	for _, c := range kc.Contexts {
		if c.Name == context {
			clusterName, userName = c.Context.Cluster, c.Context.User
		}
	}
	if clusterName == "" {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s has no context %q", path, context)
	}
	var server string
	var ca []byte
	for _, c := range kc.Clusters {
		if c.Name != clusterName {
			continue
		}
		server = c.Cluster.Server
		switch {
		case c.Cluster.CertificateAuthorityData != "":
			if ca, err = base64.StdEncoding.DecodeString(c.Cluster.CertificateAuthorityData); err != nil {
				return nil, fmt.Errorf("kubernetes: cluster %s: certificate-authority-data: %w", clusterName, err)
			}
		case c.Cluster.CertificateAuthority != "":
			p := c.Cluster.CertificateAuthority
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			if ca, err = os.ReadFile(p); err != nil {
				return nil, fmt.Errorf("kubernetes: cluster %s: %w", clusterName, err)
			}
		}
	}
	if server == "" {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: cluster %q has no server", path, clusterName)
	}
	var token string
	var cert *tls.Certificate
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		token = u.User.Token
		if u.User.TokenFile != "" {
			b, err := os.ReadFile(u.User.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("kubernetes: user %s: %w", userName, err)
			}
			token = strings.TrimSpace(string(b))
		}
		if u.User.ClientCertificateData != "" {
			c, err := decodePair(u.User.ClientCertificateData, u.User.ClientKeyData)
			if err != nil {
				return nil, fmt.Errorf("kubernetes: user %s: %w", userName, err)
			}
			cert = &c
		}
	}
	return NewClient(server, token, ca, cert)
}

func decodePair(certB64, keyB64 string) (tls.Certificate, error) {
	c, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil {
		return tls.Certificate{}, err
	}
	k, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

// path returns the REST path of a kind's objects in namespace ns, or of a
// cluster-scoped kind (Namespace) when ns is empty.
func (k kindInfo) path(ns string) string {
	base := "/apis/" + k.apiVersion
	if k.group == "" {
		base = "/api/" + k.apiVersion
	}
	if ns == "" {
		return base + "/" + k.resource
	}
	return base + "/namespaces/" + url.PathEscape(ns) + "/" + k.resource
}

func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return fmt.Errorf("kubernetes: %s %s: the answer is larger than %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode >= 300 {
		var st struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &st)
		if st.Message == "" {
			st.Message = strings.TrimSpace(string(b[:min(len(b), 300)]))
		}
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: st.Message}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Apply writes obj with server-side apply, airlock as field manager,
// taking over fields others changed (force), and returns it as stored.
func (c *Client) Apply(ctx context.Context, obj Object) (Object, error) {
	k, ns, name, err := identify(obj)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var out Object
	q := url.Values{"fieldManager": {FieldManager}, "force": {"true"}}
	err = c.do(ctx, http.MethodPatch, k.path(ns)+"/"+url.PathEscape(name)+"?"+q.Encode(), "application/apply-patch+yaml", body, &out)
	return out, err
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, k kindInfo, ns, name string) (Object, error) {
	var out Object
	err := c.do(ctx, http.MethodGet, k.path(ns)+"/"+url.PathEscape(name), "", nil, &out)
	return out, err
}

// List reads the objects of a kind with a label selector.
func (c *Client) List(ctx context.Context, k kindInfo, ns, selector string) ([]Object, error) {
	var out struct {
		Items []Object `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, k.path(ns)+"?"+url.Values{"labelSelector": {selector}}.Encode(), "", nil, &out)
	return out.Items, err
}

// Delete removes one object; a missing one is no error.
func (c *Client) Delete(ctx context.Context, k kindInfo, ns, name string) error {
	err := c.do(ctx, http.MethodDelete, k.path(ns)+"/"+url.PathEscape(name), "", nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func identify(obj Object) (kindInfo, string, string, error) {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	for _, k := range []kindInfo{deploymentKind, serviceKind, httpRouteKind} {
		if obj["apiVersion"] == k.apiVersion && obj["kind"] == k.kind {
			if name == "" || ns == "" {
				return k, "", "", fmt.Errorf("kubernetes: a %s needs a name and a namespace", k.kind)
			}
			return k, ns, name, nil
		}
	}
	return kindInfo{}, "", "", fmt.Errorf("kubernetes: airlock does not write %v/%v objects", obj["apiVersion"], obj["kind"])
}

// Do sends one request to path (e.g. /apis/rbac.authorization.k8s.io/v1/...)
// with body of contentType, and decodes a JSON answer into out (when not
// nil). Errors from the API server are *APIError (a 404 matches
// ErrNotFound).
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	return c.do(ctx, method, path, contentType, body, out)
}

// ApplyPath writes obj at path (the object's own URL) with server-side
// apply as airlock, forcing.
func (c *Client) ApplyPath(ctx context.Context, path string, obj Object) (Object, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var out Object
	q := url.Values{"fieldManager": {FieldManager}, "force": {"true"}}
	err = c.do(ctx, http.MethodPatch, path+"?"+q.Encode(), "application/apply-patch+yaml", body, &out)
	return out, err
}

// ServiceAccountDir is where a pod finds its service account's token and
// the cluster's CA.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InCluster returns a client of the cluster airlock runs in, as its pod's
// service account: the token and CA under dir (ServiceAccountDir), the
// address from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT read
// with getenv. The token is read again by NewClient only once; a pod's
// projected token is rotated by the kubelet, so callers rebuild the
// client when the environment changes (the server does at each change).
func InCluster(dir string, getenv func(string) string) (*Client, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("kubernetes: inCluster, but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: airlock does not run in a pod")
	}
	token, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		return nil, fmt.Errorf("kubernetes: inCluster: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("kubernetes: inCluster: %w", err)
	}
	return NewClient("https://"+net.JoinHostPort(host, port), strings.TrimSpace(string(token)), ca, nil)
}
