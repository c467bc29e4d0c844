// Package kubetest runs a real etcd and kube-apiserver for tests, from the
// binaries .ci/build-envtest builds from the Go module proxy (their
// directory is $KUBEBUILDER_ASSETS, as controller-runtime's envtest
// expects). No controllers run: a test acts as the kubelet and the
// controller manager where it needs them (for example it sets a
// Deployment's status).
//
// Without KUBEBUILDER_ASSETS a test is skipped, except under CI=true,
// where the missing binaries are a failure.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env is a running API server.
type Env struct {
	// URL is the API server's https address; Token a bearer token of a
	// member of system:masters.
	URL, Token string
	// CA is the PEM certificate the server's serving certificate is
	// signed with.
	CA     []byte
	Client *http.Client
}

// Start runs etcd and kube-apiserver in a temporary directory of tb and
// stops them when tb ends.
func Start(tb testing.TB) *Env {
	tb.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal(`KUBEBUILDER_ASSETS is not set; run eval "$(.ci/build-envtest)" first`)
		}
		tb.Skip(`KUBEBUILDER_ASSETS is not set; run eval "$(.ci/build-envtest)" to test against a real kube-apiserver`)
	}
	dir := tb.TempDir()
	etcdClient, etcdPeer, secure := freePort(tb), freePort(tb), freePort(tb)
	start(tb, dir, "etcd", filepath.Join(assets, "etcd"),
		"--name", "kubetest", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:"+etcdClient, "--advertise-client-urls", "http://127.0.0.1:"+etcdClient,
		"--listen-peer-urls", "http://127.0.0.1:"+etcdPeer, "--initial-advertise-peer-urls", "http://127.0.0.1:"+etcdPeer,
		"--initial-cluster", "kubetest=http://127.0.0.1:"+etcdPeer, "--unsafe-no-fsync")

	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	tokens := filepath.Join(dir, "tokens.csv")
	write(tb, tokens, token+`,kubetest-admin,kubetest-admin,"system:masters"`+"\n")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	saKey := filepath.Join(dir, "sa.key")
	write(tb, saKey, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	saPub := filepath.Join(dir, "sa.pub")
	write(tb, saPub, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	certs := filepath.Join(dir, "certs")
	start(tb, dir, "kube-apiserver", filepath.Join(assets, "kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:"+etcdClient,
		"--bind-address", "127.0.0.1", "--secure-port", secure, "--cert-dir", certs,
		"--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true", "--endpoint-reconciler-type", "none",
		"--disable-admission-plugins", "ServiceAccount")

	e := &Env{URL: "https://127.0.0.1:" + secure, Token: token}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if e.Client == nil {
			if ca, err := os.ReadFile(filepath.Join(certs, "apiserver.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(ca) {
					e.CA = ca
					e.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
				}
			}
		}
		if e.Client != nil {
			if code, _, err := e.Do(context.Background(), http.MethodGet, "/readyz", nil); err == nil && code == http.StatusOK {
				return e
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("kube-apiserver not ready after 90s; its log:\n%s", tail(filepath.Join(dir, "kube-apiserver.log")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Do sends a request with the admin token; body, when not nil, is sent
// as JSON. It returns the status and the response body.
func (e *Env) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// freePort picks a free port below the kernel's ephemeral range (from
// 32768), so an outgoing connection elsewhere cannot take it between
// this check and the server's bind.
func freePort(tb testing.TB) string {
	for range 100 {
		var b [2]byte
		rand.Read(b[:])
		port := 20000 + int(b[0])<<8%12000 + int(b[1])
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return fmt.Sprint(port)
	}
	tb.Fatal("no free port between 20000 and 32000")
	return ""
}

func write(tb testing.TB, path, s string) {
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// start runs a binary with its output in DIR/NAME.log, stopped (SIGTERM,
// then SIGKILL) when tb ends.
func start(tb testing.TB, dir, name, bin string, args ...string) {
	tb.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	tb.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := string(b)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return strings.TrimSpace(s)
}

// Errorf formats a failed call for a test.
func Errorf(method, path string, code int, body []byte) error {
	return fmt.Errorf("%s %s: %d %s", method, path, code, bytes.TrimSpace(body))
}

// Kubeconfig writes a kubeconfig file for the admin identity into dir
// (context "test") and returns its path.
func (e *Env) Kubeconfig(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "kube.yaml")
	write(tb, path, fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: test
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: test, context: {cluster: c, user: u}}]
`, e.URL, base64.StdEncoding.EncodeToString(e.CA), e.Token))
	return path
}
