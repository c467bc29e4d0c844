package sshca_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/airlock-dev/airlock/internal/access/broker/sshca"
)

func TestRevoke(t *testing.T) {
	t.Parallel()
	caPath, _ := newCA(t)
	_, pub := newUser(t)
	tests := []struct {
		name     string
		existing string // the serials file before; "-" means absent
		noFile   bool   // no revokedSerialsFile configured
		at       time.Time
		handle   string
		revokes  int // how many times Revoke is called
		want     string
		wantErr  string
	}{
		{name: "during the window", existing: "-", at: t0.Add(10 * time.Minute), handle: "42", revokes: 1, want: "serial: 42\n"},
		{name: "twice", existing: "-", at: t0.Add(10 * time.Minute), handle: "42", revokes: 2, want: "serial: 42\n"},
		{name: "before the window", existing: "-", at: t0.Add(-time.Hour), handle: "42", revokes: 1, want: "serial: 42\n"},
		{name: "appends", existing: "# revoked by airlock\nserial: 7\n", at: t0, handle: "42", revokes: 1, want: "# revoked by airlock\nserial: 7\nserial: 42\n"},
		{name: "adds the missing newline", existing: "serial: 7", at: t0, handle: "42", revokes: 1, want: "serial: 7\nserial: 42\n"},
		{name: "already in a range", existing: "serial: 40-50\n", at: t0, handle: "42", revokes: 1, want: "serial: 40-50\n"},
		{name: "other directives are left alone", existing: "id: someone\nkey: ssh-ed25519 AAAA\n", at: t0, handle: "42", revokes: 1, want: "id: someone\nkey: ssh-ed25519 AAAA\nserial: 42\n"},
		{name: "within clock skew after NotAfter", existing: "-", at: t0.Add(time.Hour + 30*time.Second), handle: "42", revokes: 1, want: "serial: 42\n"},
		{name: "expired", existing: "-", at: t0.Add(time.Hour + time.Minute), handle: "42", revokes: 1, want: "-"},
		{name: "long expired", existing: "serial: 7\n", at: t0.Add(48 * time.Hour), handle: "42", revokes: 1, want: "serial: 7\n"},
		{name: "no serials file configured", noFile: true, at: t0.Add(10 * time.Minute), handle: "42", revokes: 1},
		{name: "grant never returned", existing: "-", at: t0.Add(10 * time.Minute), handle: "", revokes: 1, want: "-"},
		{name: "malformed handle", existing: "-", at: t0.Add(10 * time.Minute), handle: "acc-1", revokes: 1, want: "-", wantErr: `handle "acc-1" is not a certificate serial`},
		{name: "zero handle", existing: "-", at: t0.Add(10 * time.Minute), handle: "0", revokes: 1, want: "-", wantErr: "is not a certificate serial"},
		{name: "padded handle", existing: "-", at: t0.Add(10 * time.Minute), handle: "042", revokes: 1, want: "-", wantErr: "is not a certificate serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			serials := filepath.Join(t.TempDir(), "revoked")
			if tt.existing != "-" && !tt.noFile {
				if err := os.WriteFile(serials, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := sshca.Config{CAKeyFile: caPath, RevokedSerialsFile: serials}
			if tt.noFile {
				cfg.RevokedSerialsFile = ""
			}
			b := newBroker(t, cfg, newClock(tt.at))
			for range tt.revokes {
				err := b.Revoke(context.Background(), grant(pub), tt.handle)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("error %v; want %q", err, tt.wantErr)
					}
				} else if err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(serials)
			switch {
			case tt.noFile:
				if !os.IsNotExist(err) {
					t.Fatalf("a serials file was written though none is configured: %q", got)
				}
			case tt.want == "-":
				if !os.IsNotExist(err) {
					t.Fatalf("serials file written: %q", got)
				}
			case err != nil:
				t.Fatal(err)
			case string(got) != tt.want:
				t.Fatalf("serials file\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRevokeCanceled(t *testing.T) {
	t.Parallel()
	caPath, _ := newCA(t)
	serials := filepath.Join(t.TempDir(), "revoked")
	b := newBroker(t, sshca.Config{CAKeyFile: caPath, RevokedSerialsFile: serials}, newClock(t0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, pub := newUser(t)
	if err := b.Revoke(ctx, grant(pub), "42"); err == nil {
		t.Fatal("Revoke with a canceled context succeeded")
	}
	if _, err := b.Grant(ctx, grant(pub)); err == nil {
		t.Fatal("Grant with a canceled context succeeded")
	}
}

// TestRevokeConcurrent revokes from many goroutines at once: each serial
// is written exactly once.
func TestRevokeConcurrent(t *testing.T) {
	t.Parallel()
	caPath, _ := newCA(t)
	serials := filepath.Join(t.TempDir(), "revoked")
	b := newBroker(t, sshca.Config{CAKeyFile: caPath, RevokedSerialsFile: serials}, newClock(t0))
	_, pub := newUser(t)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if err := b.Revoke(context.Background(), grant(pub), strconv.Itoa(1+i%4)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := os.ReadFile(serials)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	slices.Sort(lines)
	if want := []string{"serial: 1", "serial: 2", "serial: 3", "serial: 4"}; !slices.Equal(lines, want) {
		t.Fatalf("serials file %q, want each of %q once", got, want)
	}
}

func certWith(serial uint64, id string) *ssh.Certificate {
	return &ssh.Certificate{Serial: serial, KeyId: id}
}

func TestRevocationList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string // "-": absent
		revoked []*ssh.Certificate
		valid   []*ssh.Certificate
		wantErr string // the list fails closed
	}{
		{name: "absent", file: "-", valid: []*ssh.Certificate{certWith(1, "a")}},
		{name: "empty", file: "", valid: []*ssh.Certificate{certWith(1, "a")}},
		{
			name:    "serials, ranges, ids and comments",
			file:    "# airlock\n\nserial: 42\nSERIAL:7-9\nserial: 0x10\n  id: acc-1 bob  \n",
			revoked: []*ssh.Certificate{certWith(42, ""), certWith(7, ""), certWith(8, ""), certWith(9, ""), certWith(16, ""), certWith(1, "acc-1 bob")},
			valid:   []*ssh.Certificate{certWith(43, ""), certWith(6, ""), certWith(10, ""), certWith(1, "acc-1 bo")},
		},
		{name: "largest serial", file: "serial: 18446744073709551615\n", revoked: []*ssh.Certificate{certWith(1<<64-1, "")}, valid: []*ssh.Certificate{certWith(1<<64-2, "")}},
		{name: "unsupported directive", file: "serial: 1\nkey: ssh-ed25519 AAAA\n", revoked: []*ssh.Certificate{certWith(5, "x")}, wantErr: `line 2: "key: ssh-ed25519 AAAA" is a KRL directive this reader does not apply`},
		{name: "malformed serial", file: "serial: 12a\n", revoked: []*ssh.Certificate{certWith(5, "x")}, wantErr: `line 1: serial "12a" is not a number`},
		{name: "backward range", file: "serial: 9-7\n", revoked: []*ssh.Certificate{certWith(5, "x")}, wantErr: "ends before it starts"},
		{name: "not a directive", file: "42\n", revoked: []*ssh.Certificate{certWith(5, "x")}, wantErr: "is not a KRL directive"},
		{name: "empty id", file: "id:\n", revoked: []*ssh.Certificate{certWith(5, "x")}, wantErr: "without a key ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "revoked")
			if tt.file != "-" {
				if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			l, err := sshca.OpenRevocationList(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.revoked {
				if !l.IsRevoked(c) {
					t.Errorf("serial %d id %q not revoked", c.Serial, c.KeyId)
				}
			}
			for _, c := range tt.valid {
				if l.IsRevoked(c) {
					t.Errorf("serial %d id %q revoked", c.Serial, c.KeyId)
				}
			}
		})
	}
}

// TestRevocationListReload changes the file under a list: appended,
// broken, fixed, replaced and removed.
func TestRevocationListReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "revoked")
	l, err := sshca.OpenRevocationList(path)
	if err != nil {
		t.Fatal(err)
	}
	isRevoked := l.IsRevoked
	c1, c2 := certWith(1, ""), certWith(2, "")
	check := func(step string, want1, want2 bool) {
		t.Helper()
		if got := isRevoked(c1); got != want1 {
			t.Errorf("%s: serial 1 revoked = %v, want %v", step, got, want1)
		}
		if got := isRevoked(c2); got != want2 {
			t.Errorf("%s: serial 2 revoked = %v, want %v", step, got, want2)
		}
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check("absent", false, false)
	write("serial: 1\n")
	check("created", true, false)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("serial: 2\n")
	f.Close()
	check("appended", true, true)
	write("serial: 1\nserial 2\n")
	check("broken: fails closed", true, true)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("broken file: Err() = %v, want the line at fault", err)
	}
	write("serial: 2\n")
	check("fixed", false, true)
	if err := l.Err(); err != nil {
		t.Errorf("fixed file: Err() = %v", err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("serial: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	check("replaced by rename", true, false)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check("removed", false, false)
}

// TestSSHKeygen checks the broker's output with OpenSSH's own tool: the
// certificate reads back with the fields granted, and a KRL built from
// the revoked serials file (ssh-keygen -k -s ca.pub) revokes exactly the
// revoked certificate. Skipped when ssh-keygen is not installed.
func TestSSHKeygen(t *testing.T) {
	t.Parallel()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	dir := t.TempDir()
	caPath, caPub := newCA(t)
	caPubPath := filepath.Join(dir, "ca.pub")
	if err := os.WriteFile(caPubPath, ssh.MarshalAuthorizedKey(caPub), 0o644); err != nil {
		t.Fatal(err)
	}
	serials := filepath.Join(dir, "revoked-serials")
	b := newBroker(t, sshca.Config{CAKeyFile: caPath, RevokedSerialsFile: serials}, newClock(t0))
	_, pub := newUser(t)
	g := grant(pub)
	revoked, err := b.Grant(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := b.Grant(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(context.Background(), g, revoked.Handle); err != nil {
		t.Fatal(err)
	}
	certFile := func(name string, iss map[string]string) string {
		p := filepath.Join(dir, name+"-cert.pub")
		if err := os.WriteFile(p, []byte(iss["certificate"]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	revokedCert, keptCert := certFile("revoked", revoked.Credential), certFile("kept", kept.Credential)

	list := exec.Command(keygen, "-L", "-f", revokedCert)
	list.Env = append(os.Environ(), "TZ=UTC")
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Type: ssh-ed25519-cert-v01@openssh.com user certificate",
		`Key ID: "acc-20261127-001 alice@example.com"`,
		"Serial: " + revoked.Handle,
		"Valid: from 2026-11-27T13:59:00 to 2026-11-27T15:00:00",
		"deploy\n", "ops\n", "permit-pty",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, out)
		}
	}

	krl := filepath.Join(dir, "krl")
	if out, err := exec.Command(keygen, "-k", "-f", krl, "-s", caPubPath, serials).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -k: %v\n%s", err, out)
	}
	out, err = exec.Command(keygen, "-Q", "-f", krl, revokedCert).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "REVOKED") {
		t.Errorf("the KRL does not revoke the revoked certificate (%v):\n%s", err, out)
	}
	out, err = exec.Command(keygen, "-Q", "-f", krl, keptCert).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("the KRL revokes a certificate that was not revoked (%v):\n%s", err, out)
	}
}
