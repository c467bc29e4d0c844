package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/broker/sshca"
)

// t0 is the start of every test grant's window.
var t0 = time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)

// clock is a controllable clock shared by a broker and a test server.
type clock struct{ unix atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Set(t time.Time)     { c.unix.Store(t.UnixNano()) }
func (c *clock) Now() time.Time      { return time.Unix(0, c.unix.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// newCA writes a fresh CA key into a temporary directory.
func newCA(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca")
	pub, err := sshca.GenerateCA(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, pub
}

// newUser returns a user's signer and its authorized_keys line.
func newUser(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " alice@laptop"
}

func newBroker(t testing.TB, cfg sshca.Config, c *clock) *sshca.Broker {
	t.Helper()
	b, err := sshca.New(cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func grant(pub string) broker.Grant {
	return broker.Grant{
		ID:          "acc-20261127-001",
		Requester:   "alice@example.com",
		Environment: "prod",
		Resource:    "bastion",
		Role:        "operator",
		Grants:      []string{"deploy", "ops"},
		NotBefore:   t0,
		NotAfter:    t0.Add(time.Hour),
		PublicKey:   pub,
	}
}

// parseCert reads the certificate out of an issued credential.
func parseCert(t *testing.T, iss broker.Issued) *ssh.Certificate {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(iss.Credential["certificate"]))
	if err != nil {
		t.Fatalf("credential certificate does not parse: %v", err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok {
		t.Fatalf("credential certificate is a %T", k)
	}
	return cert
}

// server is an x/crypto/ssh server that trusts one CA for user
// certificates, with a controllable clock and a revocation check. It
// records why it refused each authentication.
type server struct {
	addr string

	mu      sync.Mutex
	refused []error
}

func (s *server) refusals() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.refused...)
}

func startServer(t *testing.T, ca ssh.PublicKey, c *clock, isRevoked func(*ssh.Certificate) bool) *server {
	t.Helper()
	checker := &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool {
			return string(auth.Marshal()) == string(ca.Marshal())
		},
		Clock:     c.Now,
		IsRevoked: isRevoked,
	}
	s := &server{}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			p, err := checker.Authenticate(conn, key)
			if err != nil {
				s.mu.Lock()
				s.refused = append(s.refused, err)
				s.mu.Unlock()
			}
			return p, err
		},
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AddHostKey(hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveConn(nc, cfg) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return s
}

// serveConn answers "exec" on session channels with "pong" and exit
// status 0.
func serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				if req.Type != "exec" {
					req.Reply(false, nil)
					continue
				}
				req.Reply(true, nil)
				io.WriteString(ch, "pong\n")
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
				return
			}
		}()
	}
}

// login connects as user with cert and runs a command; nil means the
// server accepted the certificate and the exchange completed.
func login(t *testing.T, addr, user string, cert *ssh.Certificate, key ssh.Signer) error {
	t.Helper()
	cs, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(cs)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the test server's host key is not under test
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatalf("accepted, but no session: %v", err)
	}
	defer sess.Close()
	out, err := sess.Output("ping")
	if err != nil {
		t.Fatalf("accepted, but exec failed: %v", err)
	}
	if string(out) != "pong\n" {
		t.Fatalf("exec output %q, want pong", out)
	}
	return nil
}

// checkRefused asserts that login failed and the server refused for the
// reason given.
func checkRefused(t *testing.T, s *server, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("server accepted the certificate; want it refused (%s)", reason)
	}
	for _, r := range s.refusals() {
		if strings.Contains(r.Error(), reason) {
			return
		}
	}
	t.Fatalf("login failed (%v), but the server's refusals %v do not include %q", err, s.refusals(), reason)
}

// TestServerWindow checks a certificate against a real SSH server at
// points around its window and for principals it does and does not hold.
func TestServerWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		at     time.Time
		user   string
		refuse string // the server's reason; empty means accepted
	}{
		{"during the window", t0.Add(30 * time.Minute), "deploy", ""},
		{"second principal", t0.Add(30 * time.Minute), "ops", ""},
		{"at NotBefore", t0, "deploy", ""},
		{"within clock skew before NotBefore", t0.Add(-50 * time.Second), "deploy", ""},
		{"last second of the window", t0.Add(time.Hour - time.Second), "deploy", ""},
		{"before the window and skew", t0.Add(-2 * time.Minute), "deploy", "not yet valid"},
		{"at NotAfter", t0.Add(time.Hour), "deploy", "expired"},
		{"after the window", t0.Add(2 * time.Hour), "deploy", "expired"},
		{"principal the certificate lacks", t0.Add(30 * time.Minute), "root", `principal "root" not in the set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caPath, caPub := newCA(t)
			c := newClock(t0.Add(-5 * time.Minute)) // approved shortly before the window
			b := newBroker(t, sshca.Config{CAKeyFile: caPath}, c)
			user, pub := newUser(t)
			iss, err := b.Grant(context.Background(), grant(pub))
			if err != nil {
				t.Fatal(err)
			}
			cert := parseCert(t, iss)

			c.Set(tt.at)
			s := startServer(t, caPub, c, nil)
			err = login(t, s.addr, tt.user, cert, user)
			if tt.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v (server: %v)", err, s.refusals())
				}
				return
			}
			checkRefused(t, s, err, tt.refuse)
		})
	}
}

// TestServerRevoke revokes a certificate during its window: the server,
// reading the revoked serials file, accepts it before and refuses it
// after, while another certificate from the same CA still works.
func TestServerRevoke(t *testing.T) {
	t.Parallel()
	caPath, caPub := newCA(t)
	serials := filepath.Join(t.TempDir(), "revoked-serials")
	c := newClock(t0.Add(10 * time.Minute))
	b := newBroker(t, sshca.Config{CAKeyFile: caPath, RevokedSerialsFile: serials}, c)
	isRevoked, err := sshca.Revoked(serials)
	if err != nil {
		t.Fatalf("a missing serials file must load as empty: %v", err)
	}
	s := startServer(t, caPub, c, isRevoked)

	user, pub := newUser(t)
	g := grant(pub)
	iss, err := b.Grant(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	other := grant(pub)
	other.ID = "acc-20261127-002"
	otherIss, err := b.Grant(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if err := login(t, s.addr, "deploy", parseCert(t, iss), user); err != nil {
		t.Fatalf("refused before revocation: %v (server: %v)", err, s.refusals())
	}

	if err := b.Revoke(context.Background(), g, iss.Handle); err != nil {
		t.Fatal(err)
	}
	err = login(t, s.addr, "deploy", parseCert(t, iss), user)
	checkRefused(t, s, err, "serial "+iss.Handle+" revoked")

	if err := login(t, s.addr, "deploy", parseCert(t, otherIss), user); err != nil {
		t.Fatalf("a certificate that was not revoked is refused: %v", err)
	}
}

// TestServerOtherCA presents a certificate signed by a CA the server does
// not trust.
func TestServerOtherCA(t *testing.T) {
	t.Parallel()
	_, trusted := newCA(t)
	otherPath, _ := newCA(t)
	c := newClock(t0.Add(10 * time.Minute))
	b := newBroker(t, sshca.Config{CAKeyFile: otherPath}, c)
	user, pub := newUser(t)
	iss, err := b.Grant(context.Background(), grant(pub))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, trusted, c, nil)
	err = login(t, s.addr, "deploy", parseCert(t, iss), user)
	checkRefused(t, s, err, "unrecognized authority")
}
