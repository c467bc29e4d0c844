package sshca_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/airlock-dev/airlock/internal/access/broker/sshca"
)

// FuzzGrantPublicKey feeds arbitrary text to Grant as the requester's
// public key. Grant must never panic; when it issues, the certificate
// certifies exactly the key the text holds, and when it refuses, it
// issues nothing.
func FuzzGrantPublicKey(f *testing.F) {
	_, ed := newUser(f)
	caDir := f.TempDir()
	caPath := filepath.Join(caDir, "ca")
	if _, err := sshca.GenerateCA(caPath); err != nil {
		f.Fatal(err)
	}
	b := newBroker(f, sshca.Config{CAKeyFile: caPath}, newClock(t0))
	iss, err := b.Grant(context.Background(), grant(ed))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"rsa1024.pub", "rsa2048.pub"} {
		k, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(k))
	}
	for _, seed := range []string{
		ed,
		ed + "\n",
		"# comment\n" + ed,
		`command="/bin/sh" ` + ed,
		ed + "\n" + ed,
		iss.Credential["certificate"],
		"",
		"ssh-ed25519",
		"ssh-ed25519 AAAA",
		"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQ==",
		"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=",
		"sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
		"\x00\xff",
	} {
		f.Add(seed)
	}
	g := grant("")
	f.Fuzz(func(t *testing.T, text string) {
		g := g
		g.PublicKey = text
		iss, err := b.Grant(context.Background(), g)
		if err != nil {
			if iss.Handle != "" || iss.Credential != nil {
				t.Fatalf("refused (%v) but issued %+v", err, iss)
			}
			return
		}
		want, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
		if err != nil {
			t.Fatalf("issued for text x/crypto does not parse: %v", err)
		}
		if len(options) > 0 || strings.TrimSpace(string(rest)) != "" {
			t.Fatalf("issued for text with options or more than one line: %q", text)
		}
		if _, isCert := want.(*ssh.Certificate); isCert {
			t.Fatal("issued a certificate for a certificate")
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(iss.Credential["certificate"]))
		if err != nil {
			t.Fatalf("issued certificate does not parse: %v", err)
		}
		cert, ok := k.(*ssh.Certificate)
		if !ok {
			t.Fatalf("issued %T, not a certificate", k)
		}
		if string(cert.Key.Marshal()) != string(want.Marshal()) {
			t.Fatal("the certificate certifies another key than the one given")
		}
		if cert.ValidBefore != uint64(g.NotAfter.Unix()) || cert.ValidAfter != uint64(g.NotBefore.Add(-time.Minute).Unix()) {
			t.Fatalf("window %d..%d", cert.ValidAfter, cert.ValidBefore)
		}
	})
}
