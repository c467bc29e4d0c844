package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// TestServerDeliversNotificationQueuedBeforeStart queues a notification in
// the data directory while no server runs, as a crash would leave it, and
// checks that starting the server delivers it.
func TestServerDeliversNotificationQueuedBeforeStart(t *testing.T) {
	got := make(chan string, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Content-Type")
	}))
	defer rcv.Close()

	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "airlock.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scheme := server.NewScheme()
	objs, err := scheme.Decode("sink.yaml", []byte(fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: hook}\nspec: {type: webhook, url: %q}\n", rcv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.New(st, scheme).Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error {
		_, err := notify.Enqueue(ctx, tx, notify.Event{Type: notify.PromotionBlocked, Subject: "shop → prod"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	_, stop := start(t, dir)
	defer stop()
	select {
	case ct := <-got:
		if ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the queued notification was not delivered by the server")
	}
}
