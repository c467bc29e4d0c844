package seal

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealRoundTripAndBinding(t *testing.T) {
	dir := t.TempDir()
	s, err := LoadOrCreateKey(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Seal("acc-1", []byte(`{"dsn":"postgres://u:secret@h/db"}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "secret") || !strings.HasPrefix(v, Prefix) {
		t.Fatalf("sealed value shows its plaintext: %s", v)
	}
	got, err := s.Open("acc-1", v)
	if err != nil || !bytes.Equal(got, []byte(`{"dsn":"postgres://u:secret@h/db"}`)) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open("acc-2", v); err == nil {
		t.Fatal("a value sealed for acc-1 opened for acc-2")
	}
	again, err := LoadOrCreateKey(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open("acc-1", v); err != nil {
		t.Fatalf("the reloaded key does not open: %v", err)
	}
	other, _ := LoadOrCreateKey(filepath.Join(dir, "other.key"))
	if _, err := other.Open("acc-1", v); err == nil {
		t.Fatal("another key opened the value")
	}
	if _, err := s.Open("acc-1", v[:len(v)-4]+"AAAA"); err == nil {
		t.Fatal("a tampered value opened")
	}
}
