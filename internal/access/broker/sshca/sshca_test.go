package sshca_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/broker/sshca"
)

func TestGrantCertificate(t *testing.T) {
	t.Parallel()
	caPath, caPub := newCA(t)
	c := newClock(t0.Add(-5 * time.Minute))
	b := newBroker(t, sshca.Config{CAKeyFile: caPath}, c)
	userSigner, pub := newUser(t)
	g := grant(pub)

	iss, err := b.Grant(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, iss)
	if cert.CertType != ssh.UserCert {
		t.Errorf("CertType = %d, want user", cert.CertType)
	}
	if string(cert.Key.Marshal()) != string(userSigner.PublicKey().Marshal()) {
		t.Error("the certificate certifies another key than the requester's")
	}
	if string(cert.SignatureKey.Marshal()) != string(caPub.Marshal()) {
		t.Error("the certificate is not signed by the CA")
	}
	if want := "acc-20261127-001 alice@example.com"; cert.KeyId != want {
		t.Errorf("KeyId = %q, want %q", cert.KeyId, want)
	}
	if !slices.Equal(cert.ValidPrincipals, []string{"deploy", "ops"}) {
		t.Errorf("ValidPrincipals = %q", cert.ValidPrincipals)
	}
	if want := uint64(t0.Add(-time.Minute).Unix()); cert.ValidAfter != want {
		t.Errorf("ValidAfter = %d, want %d (NotBefore minus a minute)", cert.ValidAfter, want)
	}
	if want := uint64(t0.Add(time.Hour).Unix()); cert.ValidBefore != want {
		t.Errorf("ValidBefore = %d, want %d (NotAfter)", cert.ValidBefore, want)
	}
	if cert.Serial == 0 {
		t.Error("serial is zero")
	}
	if len(cert.CriticalOptions) != 0 {
		t.Errorf("critical options %v", cert.CriticalOptions)
	}
	if want := map[string]string{"permit-pty": ""}; !mapsEqual(cert.Extensions, want) {
		t.Errorf("Extensions = %v, want %v", cert.Extensions, want)
	}
	serial := strconv.FormatUint(cert.Serial, 10)
	wantCred := map[string]string{
		"certificate": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))),
		"principals":  "deploy,ops",
		"validBefore": "2026-11-27T15:00:00Z",
		"serial":      serial,
	}
	if !mapsEqual(iss.Credential, wantCred) {
		t.Errorf("Credential = %v, want %v", iss.Credential, wantCred)
	}
	if iss.Handle != serial {
		t.Errorf("Handle = %q, want the serial %s", iss.Handle, serial)
	}

	// A retried grant signs a new certificate with a new serial.
	again, err := b.Grant(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if again.Handle == iss.Handle {
		t.Error("two grants got the same serial")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestGrantExtensions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   map[string]string
	}{
		{"default", `{"caKeyFile": "CA"}`, map[string]string{"permit-pty": ""}},
		{"listed", `{"caKeyFile": "CA", "extensions": ["permit-port-forwarding", "permit-agent-forwarding"]}`,
			map[string]string{"permit-port-forwarding": "", "permit-agent-forwarding": ""}},
		{"none", `{"caKeyFile": "CA", "extensions": []}`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caPath, _ := newCA(t)
			raw := strings.Replace(tt.config, "CA", caPath, 1)
			b, err := broker.New("ssh", json.RawMessage(raw), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, pub := newUser(t)
			g := grant(pub)
			g.NotBefore = time.Now()
			g.NotAfter = g.NotBefore.Add(time.Hour)
			iss, err := b.Grant(context.Background(), g)
			if err != nil {
				t.Fatal(err)
			}
			if got := parseCert(t, iss).Extensions; !mapsEqual(got, tt.want) {
				t.Errorf("Extensions = %v, want %v", got, tt.want)
			}
		})
	}
}

// authorized returns k in authorized_keys format.
func authorized(t *testing.T, k ssh.PublicKey) string {
	t.Helper()
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// rsaKey returns a test RSA public key of 1024 or 2048 bits from
// testdata (generating RSA keys takes seconds under the race detector).
func rsaKey(t *testing.T, bits int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("rsa%d.pub", bits)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// dsaKey builds an ssh-dss public key line by hand (crypto/dsa key
// generation is slow and deprecated, and x/crypto/ssh no longer parses
// DSA keys).
func dsaKey() string {
	p := new(big.Int).Lsh(big.NewInt(1), 1023)
	p.Add(p, big.NewInt(1))
	blob := ssh.Marshal(struct {
		Name       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", p, new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(2), big.NewInt(3)})
	return "ssh-dss " + base64.StdEncoding.EncodeToString(blob) + " old@host"
}

func TestGrantBadInput(t *testing.T) {
	t.Parallel()
	caPath, _ := newCA(t)
	c := newClock(t0.Add(-5 * time.Minute))
	b := newBroker(t, sshca.Config{CAKeyFile: caPath}, c)
	_, pub := newUser(t)
	issued, err := b.Grant(context.Background(), grant(pub))
	if err != nil {
		t.Fatal(err)
	}
	certText := issued.Credential["certificate"]
	_, pub2 := newUser(t)

	tests := []struct {
		name   string
		modify func(g *broker.Grant)
		want   string
	}{
		{"missing key", func(g *broker.Grant) { g.PublicKey = "" }, `no public key given; expected one public key in authorized_keys format, e.g. "ssh-ed25519 AAAA... user@host"`},
		{"blank key", func(g *broker.Grant) { g.PublicKey = " \n\t" }, "no public key given"},
		{"malformed key", func(g *broker.Grant) { g.PublicKey = "not a key" }, `malformed public key (ssh: no key found`},
		{"malformed key says what is expected", func(g *broker.Grant) { g.PublicKey = "not a key" }, `expected one public key in authorized_keys format, e.g. "ssh-ed25519 AAAA... user@host"`},
		{"truncated key", func(g *broker.Grant) { g.PublicKey = pub[:40] }, "malformed public key"},
		{"private key", func(g *broker.Grant) {
			g.PublicKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
		}, "malformed public key"},
		{"certificate as key", func(g *broker.Grant) { g.PublicKey = certText }, "the public key is itself a certificate (ssh-ed25519-cert-v01@openssh.com); give the plain public key it certifies"},
		{"short RSA key", func(g *broker.Grant) { g.PublicKey = rsaKey(t, 1024) }, "RSA key of 1024 bits is too short; at least 2048 bits are required"},
		{"DSA key", func(g *broker.Grant) { g.PublicKey = dsaKey() }, "malformed public key"},
		{"options", func(g *broker.Grant) { g.PublicKey = `command="/bin/true" ` + pub }, `public key has authorized_keys options (command="/bin/true")`},
		{"two keys", func(g *broker.Grant) { g.PublicKey = pub + "\n" + pub2 }, "more than one line given"},
		{"huge input", func(g *broker.Grant) { g.PublicKey = strings.Repeat("A", 20000) }, "longer than any OpenSSH key"},
		{"no principals", func(g *broker.Grant) { g.Grants = nil }, "no principals: the access role must map to at least one SSH principal"},
		{"empty principal", func(g *broker.Grant) { g.Grants = []string{"deploy", ""} }, "empty principal"},
		{"principal with comma", func(g *broker.Grant) { g.Grants = []string{"deploy,root"} }, `principal "deploy,root" contains a comma`},
		{"principal with newline", func(g *broker.Grant) { g.Grants = []string{"deploy\nroot"} }, "contains a comma, whitespace or a control character"},
		{"no ID", func(g *broker.Grant) { g.ID = "" }, "a grant needs an ID and a requester"},
		{"no requester", func(g *broker.Grant) { g.Requester = "" }, "a grant needs an ID and a requester"},
		{"no NotAfter", func(g *broker.Grant) { g.NotAfter = time.Time{} }, "its window must end after it starts"},
		{"NotAfter before NotBefore", func(g *broker.Grant) { g.NotAfter = t0.Add(-time.Hour) }, "its window must end after it starts"},
		{"window already over", func(g *broker.Grant) {
			g.NotBefore = t0.Add(-3 * time.Hour)
			g.NotAfter = t0.Add(-2 * time.Hour)
		}, "its window ended at 2026-11-27T12:00:00Z; nothing to issue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grant(pub)
			tt.modify(&g)
			iss, err := b.Grant(context.Background(), g)
			if err == nil {
				t.Fatalf("issued %v; want an error", iss.Credential)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not say %q", err, tt.want)
			}
			if iss.Handle != "" || iss.Credential != nil {
				t.Errorf("something was issued with the error: %+v", iss)
			}
		})
	}
}

func TestGrantAcceptsKeys(t *testing.T) {
	t.Parallel()
	caPath, _ := newCA(t)
	b := newBroker(t, sshca.Config{CAKeyFile: caPath}, newClock(t0))
	_, ed := newUser(t)
	tests := []struct{ name, key string }{
		{"ed25519 with comment", ed},
		{"ed25519 with trailing newline", ed + "\n"},
		{"ed25519 after a comment line", "# my key\n" + ed},
		{"RSA 2048", rsaKey(t, 2048)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Grant(context.Background(), grant(tt.key)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   string // empty: valid
	}{
		{"minimal", `{"caKeyFile": "/etc/airlock/ssh-ca"}`, ""},
		{"full", `{"caKeyFile": "/etc/airlock/ssh-ca", "revokedSerialsFile": "/var/lib/airlock/ssh-revoked", "extensions": ["permit-pty", "permit-port-forwarding", "login@example.com"]}`, ""},
		{"unknown field", `{"caKeyFile": "/etc/airlock/ssh-ca", "caKey": "x"}`, `ssh broker: unknown field "caKey" in configuration; the fields are caKeyFile, revokedSerialsFile and extensions`},
		{"missing caKeyFile", `{}`, "caKeyFile is required"},
		{"empty", ``, "configuration is missing"},
		{"not an object", `["a"]`, "ssh broker: configuration: json: cannot unmarshal array"},
		{"trailing data", `{"caKeyFile": "/ca"} {"caKeyFile": "/ca"}`, "unexpected data after the JSON object"},
		{"unknown extension", `{"caKeyFile": "/ca", "extensions": ["permit-pty", "permit-everything"]}`, `unknown certificate extension "permit-everything"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := broker.Validate("ssh", json.RawMessage(tt.config))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate error %v; want %q", err, tt.want)
			}
			if _, err := broker.New("ssh", json.RawMessage(tt.config), nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %v; want %q", err, tt.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	if !slices.Contains(broker.Types(), "ssh") {
		t.Fatalf("broker types %v lack ssh", broker.Types())
	}
}

func TestCAKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const secret = "c2VjcmV0LWtleS1tYXRlcmlhbA"
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"+secret+"\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "ssh broker: read CA key: open "},
		{"garbage", garbage, "is not an OpenSSH or PEM private key"},
		{"passphrase", filepath.Join("testdata", "locked.key"), "is protected by a passphrase; airlock needs it unencrypted"},
		{"short RSA", filepath.Join("testdata", "rsa1024.key"), "RSA key of 1024 bits is too short"},
		{"PEM RSA", filepath.Join("testdata", "rsa2048.pem"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := sshca.New(sshca.Config{CAKeyFile: tt.path}, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				_, pub := newUser(t)
				g := grant(pub)
				g.NotBefore, g.NotAfter = time.Now(), time.Now().Add(time.Hour)
				iss, err := b.Grant(context.Background(), g)
				if err != nil {
					t.Fatal(err)
				}
				if sig := parseCert(t, iss).Signature.Format; sig != ssh.KeyAlgoRSASHA512 && sig != ssh.KeyAlgoRSASHA256 {
					t.Errorf("RSA CA signed with %s, want rsa-sha2-256 or rsa-sha2-512 (never SHA-1 ssh-rsa)", sig)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals the key file's contents: %v", err)
			}
		})
	}
}

func TestGenerateCA(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ca")
	pub, err := sshca.GenerateCA(path)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("CA key type %s, want ed25519", pub.Type())
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("CA key mode %o, want 600", mode)
	}
	b, err := sshca.New(sshca.Config{CAKeyFile: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.CAPublicKey().Marshal()) != string(pub.Marshal()) {
		t.Error("the broker's CA public key differs from the one GenerateCA returned")
	}
	if _, err := sshca.GenerateCA(path); err == nil {
		t.Error("GenerateCA overwrote an existing key")
	}
	after, err := sshca.New(sshca.Config{CAKeyFile: path}, nil)
	if err != nil || string(after.CAPublicKey().Marshal()) != string(pub.Marshal()) {
		t.Errorf("the CA key changed after a refused GenerateCA (%v)", err)
	}
}
