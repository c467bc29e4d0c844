package api

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

func usageStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// putFlag stores a boolean flag of shop in env with the given status, as
// the store holds it (no change control, no status computed).
func putFlag(t *testing.T, st store.Store, key, env, status string) {
	t.Helper()
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: flag.KindName,
		Metadata: resource.Metadata{Name: flag.Name("shop", key, env), Labels: map[string]string{"team": "checkout"}}}
	if err := obj.SetSpec(flag.Spec{App: "shop", Environment: env, Key: key, Type: flag.Boolean,
		Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "on", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if status != "" {
		obj.Status = json.RawMessage(status)
	}
	if err := st.Write(context.Background(), store.Actor{Name: "test"}, func(tx store.Tx) error {
		_, err := tx.Create(context.Background(), obj)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func storedStatus(t *testing.T, st store.Store, key, env string) (map[string]any, *resource.Object) {
	t.Helper()
	obj, err := st.Get(context.Background(), flag.KindName, flag.Name("shop", key, env))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := obj.DecodeStatus(&m); err != nil {
		t.Fatal(err)
	}
	return m, obj
}

// TestFlagUsageFlush: noted days reach status.lastEvaluated as the day's
// UTC midnight, once per day, never backwards, keeping the rest of the
// flag; each write is audited as system:flag-usage.
func TestFlagUsageFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := usageStore(t)
	putFlag(t, st, "a", "staging", `{"uniformSince":"2026-11-01T10:00:00Z","uniformVariant":"on","plan":"p1","futureField":7}`)
	putFlag(t, st, "b", "staging", "")
	putFlag(t, st, "c", "staging", `{"lastEvaluated":"2026-11-27T00:00:00Z"}`)
	_, before := storedStatus(t, st, "a", "staging")

	var u flagUsage
	noon := time.Date(2026, 11, 26, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	u.note("shop", "a", "staging", noon)
	u.note("shop", "b", "staging", noon.Add(-48*time.Hour))
	u.note("shop", "b", "staging", noon)                    // the later day wins
	u.note("shop", "b", "staging", noon.Add(-24*time.Hour)) // and stays
	u.note("shop", "c", "staging", noon)                    // already stored a later day
	u.note("shop", "gone", "staging", noon)                 // no such flag
	if n, err := u.flush(ctx, st); err != nil || n != 2 {
		t.Fatalf("flush: %d, %v; want 2 flags updated", n, err)
	}
	a, after := storedStatus(t, st, "a", "staging")
	want := map[string]any{"uniformSince": "2026-11-01T10:00:00Z", "uniformVariant": "on", "plan": "p1", "futureField": float64(7), "lastEvaluated": "2026-11-26T00:00:00Z"}
	if len(a) != len(want) {
		t.Fatalf("status of a: %v, want %v", a, want)
	}
	for k, v := range want {
		if a[k] != v {
			t.Fatalf("status of a: %s = %v, want %v (whole status %v)", k, a[k], v, a)
		}
	}
	if string(after.Spec) != string(before.Spec) || after.Metadata.Labels["team"] != "checkout" || !after.Metadata.CreatedAt.Equal(before.Metadata.CreatedAt) {
		t.Fatalf("flush changed more than the status:\n%+v\n%+v", before, after)
	}
	if b, _ := storedStatus(t, st, "b", "staging"); b["lastEvaluated"] != "2026-11-26T00:00:00Z" {
		t.Fatalf("status of b: %v", b)
	}
	if c, _ := storedStatus(t, st, "c", "staging"); c["lastEvaluated"] != "2026-11-27T00:00:00Z" {
		t.Fatalf("status of c went back to an older day: %v", c)
	}
	if _, ok := u.days.Load(usageKey{"shop", "gone", "staging"}); ok {
		t.Fatal("a deleted flag is still noted")
	}

	// The same day again writes nothing; the next day writes once more.
	u.note("shop", "a", "staging", noon.Add(time.Hour))
	if n, err := u.flush(ctx, st); err != nil || n != 0 {
		t.Fatalf("flush on the same day: %d, %v", n, err)
	}
	u.note("shop", "a", "staging", noon.Add(24*time.Hour))
	if n, err := u.flush(ctx, st); err != nil || n != 1 {
		t.Fatalf("flush the next day: %d, %v", n, err)
	}
	if a, _ := storedStatus(t, st, "a", "staging"); a["lastEvaluated"] != "2026-11-27T00:00:00Z" || a["uniformVariant"] != "on" {
		t.Fatalf("status of a the next day: %v", a)
	}

	var entries []audit.Entry
	if err := st.Audit().Entries(ctx, store.AuditFilter{Actor: "system:flag-usage"}, func(e audit.Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d audit entries by system:flag-usage, want 3: %+v", len(entries), entries)
	}
	for _, e := range entries {
		if e.Reason != flagUsageActor.Reason || e.Kind != flag.KindName {
			t.Fatalf("audit entry %+v", e)
		}
	}
}

// TestFlagUsageNoteAllocates nothing for a flag already noted today: it
// runs on every evaluation.
func TestFlagUsageNoteAllocates(t *testing.T) {
	var u flagUsage
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	app, key, env := "shop", "new-checkout", "prod"
	u.note(app, key, env, now)
	if n := testing.AllocsPerRun(1000, func() { u.note(app, key, env, now) }); n != 0 {
		t.Fatalf("note allocates %v times per call", n)
	}
}

func TestUnixDay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(1970, 1, 1, 23, 59, 59, 0, time.UTC), 0},
		{time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), 1},
		{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), -1},
		{time.Date(2026, 11, 27, 0, 30, 0, 0, time.FixedZone("CET", 3600)), unixDay(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))},
	} {
		if got := unixDay(tc.t); got != tc.want {
			t.Errorf("unixDay(%s) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

func BenchmarkFlagUsageNote(b *testing.B) {
	var u flagUsage
	now := time.Now()
	u.note("shop", "new-checkout", "prod", now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.note("shop", "new-checkout", "prod", now)
		}
	})
}
