package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/server"
)

// start runs a server on a free port and returns its address and a stop
// function that waits for a clean shutdown.
func start(t *testing.T, dir string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
	}()
	select {
	case addr := <-ready:
		return addr, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server stopped with %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("server did not start in 20s")
	}
	return "", nil
}

func get(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestBootstrapAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	addr, stop := start(t, dir)
	tokenPath := filepath.Join(dir, "admin.token")
	fi, err := os.Stat(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	for _, f := range []string{"audit.key", "airlock.db"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: %v, mode %v; want private", f, err, fi.Mode())
		}
	}
	raw, _ := os.ReadFile(tokenPath)
	token := strings.TrimSpace(string(raw))
	if code := get(t, "http://"+addr+"/api/v1/whoami", token); code != 200 {
		t.Fatalf("whoami with the bootstrap token: %d", code)
	}
	if code := get(t, "http://"+addr+"/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The bootstrap token was one store write: the writer's batch metrics
	// have counted it.
	for _, m := range []string{"airlock_store_commit_seconds_count", "airlock_store_batch_writes_count", "airlock_http_requests_total"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	stop()

	// A restart keeps the identity and its token, and writes no new one.
	addr, stop = start(t, dir)
	defer stop()
	raw2, _ := os.ReadFile(tokenPath)
	if string(raw2) != string(raw) {
		t.Fatal("restart replaced admin.token")
	}
	if code := get(t, "http://"+addr+"/api/v1/whoami", token); code != 200 {
		t.Fatalf("whoami after restart: %d", code)
	}
}

func TestRejectsNonPostgresDatabaseURL(t *testing.T) {
	err := server.Run(context.Background(), server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", DatabaseURL: "mysql://root:secret@db/x"})
	if err == nil || !strings.Contains(err.Error(), "only PostgreSQL") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v should refuse the URL without printing its password", err)
	}
}
