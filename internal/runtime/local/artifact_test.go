package local

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return DigestPrefix + hex.EncodeToString(h[:])
}

func newStore(t *testing.T) *Artifacts {
	t.Helper()
	a, err := NewArtifacts(t.TempDir(), 1<<20, UnpackLimits{MaxBytes: 1 << 20, MaxFiles: 10})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPutStoresByDigest(t *testing.T) {
	t.Parallel()
	a := newStore(t)
	data := []byte("#!/bin/sh\necho hi\n")
	p, err := a.Put(bytes.NewReader(data), digestOf(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(a.dir, "sha256", digestOf(data)[len(DigestPrefix):]); p != want {
		t.Fatalf("path %s, want %s", p, want)
	}
	if got := readFile(t, p); got != string(data) {
		t.Fatalf("stored %q", got)
	}
	exe, err := a.Executable(digestOf(data), "")
	if err != nil || exe != p {
		t.Fatalf("Executable = %q, %v; want %q", exe, err, p)
	}
}

func TestPutRefusesDigestMismatch(t *testing.T) {
	t.Parallel()
	a := newStore(t)
	want := digestOf([]byte("the release"))
	_, err := a.Put(strings.NewReader("something else"), want)
	var mm *DigestMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("Put = %v, want a DigestMismatchError", err)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), digestOf([]byte("something else"))) {
		t.Fatalf("error %q does not name both digests", err)
	}
	if a.Has(want) {
		t.Fatal("mismatched bytes were stored")
	}
}

func TestPutRefusesOversizeAndBadDigest(t *testing.T) {
	t.Parallel()
	a := newStore(t)
	big := bytes.Repeat([]byte("a"), 1<<20+1)
	if _, err := a.Put(bytes.NewReader(big), digestOf(big)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize Put = %v, want a size limit error", err)
	}
	for _, d := range []string{"", "sha256:abc", "md5:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("A", 64)} {
		if _, err := a.Put(strings.NewReader("x"), d); err == nil {
			t.Errorf("Put with digest %q succeeded", d)
		}
	}
}

func TestExecutableRefusesTamperedBytes(t *testing.T) {
	t.Parallel()
	a := newStore(t)
	data := []byte("original bytes")
	d := digestOf(data)
	p, err := a.Put(bytes.NewReader(data), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Executable(d, ""); err != nil {
		t.Fatal(err)
	}
	// Same size, so only the hash can tell.
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, []byte("tampered bytes"), 0o500); err != nil {
		t.Fatal(err)
	}
	_, err = a.Executable(d, "")
	var mm *DigestMismatchError
	if !errors.As(err, &mm) || mm.Want != d {
		t.Fatalf("Executable after tampering = %v, want a DigestMismatchError", err)
	}
}

type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func tarGz(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestTarGzUnpacksAndFindsEntrypoint(t *testing.T) {
	t.Parallel()
	a := newStore(t)
	tgz := tarGz(t, []tarEntry{
		{name: "app/", typ: tar.TypeDir, mode: 0o755},
		{name: "app/bin/server", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\n"},
		{name: "app/README", typ: tar.TypeReg, mode: 0o644, body: "read me"},
		{name: "app/current", typ: tar.TypeSymlink, link: "bin/server"},
	})
	d := digestOf(tgz)
	if _, err := a.Put(bytes.NewReader(tgz), d); err != nil {
		t.Fatal(err)
	}
	exe, err := a.Executable(d, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(exe, "/app/bin/server") || readFile(t, exe) != "#!/bin/sh\n" {
		t.Fatalf("entrypoint %s", exe)
	}
	if _, err := a.Executable(d, "app/README"); err != nil {
		t.Fatalf("named entrypoint: %v", err)
	}
	if _, err := a.Executable(d, "app/missing"); err == nil {
		t.Fatal("a missing named entrypoint was accepted")
	}
	// Tampering with the unpacked entrypoint is caught too.
	os.Chmod(exe, 0o700)
	os.WriteFile(exe, []byte("#!/bin/sx\n"), 0o500)
	var mm *DigestMismatchError
	if _, err := a.Executable(d, ""); !errors.As(err, &mm) {
		t.Fatalf("tampered entrypoint: %v, want DigestMismatchError", err)
	}
}

func TestTarGzRefusesUnsafeEntries(t *testing.T) {
	t.Parallel()
	exe := tarEntry{name: "server", typ: tar.TypeReg, mode: 0o755, body: "x"}
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dot-dot", []tarEntry{exe, {name: "../evil", typ: tar.TypeReg, mode: 0o644, body: "x"}}, "traversal"},
		{"nested dot-dot", []tarEntry{{name: "a/../../evil", typ: tar.TypeReg, body: "x"}}, "traversal"},
		{"absolute", []tarEntry{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}}, "absolute"},
		{"symlink up", []tarEntry{exe, {name: "l", typ: tar.TypeSymlink, link: "../../etc"}}, "outside"},
		{"symlink absolute", []tarEntry{exe, {name: "l", typ: tar.TypeSymlink, link: "/etc"}}, "outside"},
		{"write through symlink", []tarEntry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "d/x", typ: tar.TypeReg, body: "x"}}, "below the symlink"},
		{"hard link", []tarEntry{exe, {name: "h", typ: tar.TypeLink, link: "server"}}, "only files"},
		{"device", []tarEntry{{name: "dev", typ: tar.TypeChar}}, "only files"},
		{"too many files", func() []tarEntry {
			var es []tarEntry
			for i := range 11 {
				es = append(es, tarEntry{name: string(rune('a' + i)), typ: tar.TypeReg, body: "x"})
			}
			return es
		}(), "entries"},
		{"too large", []tarEntry{{name: "big", typ: tar.TypeReg, body: strings.Repeat("z", 1<<20+1)}}, "exceed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newStore(t)
			tgz := tarGz(t, tt.entries)
			_, err := a.Put(bytes.NewReader(tgz), digestOf(tgz))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Put = %v, want an error containing %q", err, tt.want)
			}
			if a.Has(digestOf(tgz)) {
				t.Fatal("the refused artifact was stored")
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(a.dir), "evil")); err == nil {
				t.Fatal("a file escaped the store")
			}
		})
	}
}

func TestTarGzWithSeveralExecutablesNeedsEntrypoint(t *testing.T) {
	t.Parallel()
	a := newStore(t)
	tgz := tarGz(t, []tarEntry{
		{name: "a", typ: tar.TypeReg, mode: 0o755, body: "1"},
		{name: "b", typ: tar.TypeReg, mode: 0o755, body: "2"},
	})
	d := digestOf(tgz)
	if _, err := a.Put(bytes.NewReader(tgz), d); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Executable(d, ""); err == nil || !strings.Contains(err.Error(), "name the entrypoint") {
		t.Fatalf("Executable = %v, want a request to name the entrypoint", err)
	}
	if p, err := a.Executable(d, "b"); err != nil || readFile(t, p) != "2" {
		t.Fatalf("Executable(b) = %s, %v", p, err)
	}
}

// FuzzPut feeds arbitrary bytes (seeded with tarballs) to the store: Put
// must never panic, and nothing may appear outside the store's directory.
func FuzzPut(f *testing.F) {
	f.Add(tarGz(f, []tarEntry{{name: "bin/app", typ: tar.TypeReg, mode: 0o755, body: "x"}}))
	f.Add(tarGz(f, []tarEntry{{name: "../evil", typ: tar.TypeReg, body: "x"}}))
	f.Add(tarGz(f, []tarEntry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "d/x", typ: tar.TypeReg, body: "x"}}))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		a, err := NewArtifacts(filepath.Join(parent, "store"), 1<<20, UnpackLimits{MaxBytes: 1 << 20, MaxFiles: 50})
		if err != nil {
			t.Fatal(err)
		}
		a.Put(bytes.NewReader(data), digestOf(data))
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "store" {
			t.Fatalf("files outside the store: %v", entries)
		}
		tmp, _ := os.ReadDir(filepath.Join(parent, "store", "tmp"))
		if len(tmp) != 0 {
			t.Fatalf("temporary files left behind: %v", tmp)
		}
	})
}
