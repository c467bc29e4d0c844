// Package storetest is the conformance suite every store.Store
// implementation passes, and the benchmarks they share. Implementations
// call Run from their own tests with a function that opens a fresh, empty
// store.
package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call and close it when the test ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"ListByKindOrderedByName", testList},
		{"UpdateAndDelete", testUpdateDelete},
		{"LabelSelectors", testSelectors},
		{"CompareAndSwapOneWinner", testCAS},
		{"ConflictMessage", testConflictMessage},
		{"ErrorRollsBackObjectsAndAudit", testRollback},
		{"FailedCallerDoesNotSpoilBatch", testIsolation},
		{"ReadsSeeOwnWrites", testReadOwnWrites},
		{"RevisionIsEntrySeq", testRevisionIsSeq},
		{"ChainVerifiesWithCheckpoints", testChain},
		{"ConcurrentWriters", testConcurrentWriters},
		{"LargeWritesSpanStatementChunks", testLargeWrites},
		{"WatchDeliversInOrder", testWatch},
		{"WatchResumesAfter", testWatchResume},
		{"AuditEntriesFilters", testEntriesFilters},
		{"CreatedAtImmutable", testCreatedAtImmutable},
		{"CancelledContextRunsNothing", testCancelled},
		{"RecordAppendsEntryOnly", testRecord},
		{"AuditNotesPerWrite", testAuditNote},
		{"ClosedStore", testClosed},
		{"BlobsAreContentAddressed", testBlobs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var (
	alice = store.Actor{Name: "alice", Reason: "ticket-1"}
	bob   = store.Actor{Name: "bob"}
)

// Obj returns an object of kind and name with the given labels and a spec.
func Obj(kind, name string, labels map[string]string, spec string) *resource.Object {
	return &resource.Object{
		APIVersion: resource.APIVersion,
		Kind:       kind,
		Metadata:   resource.Metadata{Name: name, Labels: labels},
		Spec:       json.RawMessage(spec),
	}
}

// Create creates obj through st in a Write of its own and fails t if it
// cannot. It returns the object as stored.
func Create(t testing.TB, st store.Store, obj *resource.Object) *resource.Object {
	t.Helper()
	var out *resource.Object
	err := st.Write(context.Background(), alice, func(tx store.Tx) error {
		var err error
		out, err = tx.Create(context.Background(), obj)
		return err
	})
	if err != nil {
		t.Fatalf("create %s: %v", obj.Ref(), err)
	}
	return out
}

func update(st store.Store, obj *resource.Object) (*resource.Object, error) {
	var out *resource.Object
	err := st.Write(context.Background(), alice, func(tx store.Tx) error {
		var err error
		out, err = tx.Update(context.Background(), obj)
		return err
	})
	return out, err
}

func del(st store.Store, kind, name string, rev int64) error {
	return st.Write(context.Background(), alice, func(tx store.Tx) error {
		return tx.Delete(context.Background(), kind, name, rev)
	})
}

func entries(t testing.TB, st store.Store, f store.AuditFilter) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := st.Audit().Entries(context.Background(), f, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("entries: %v", err)
	}
	return out
}

func head(t testing.TB, st store.Store) (int64, string) {
	t.Helper()
	seq, hash, err := st.Audit().Head(context.Background())
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return seq, hash
}

func names(objs []*resource.Object) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Metadata.Name)
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Verify streams the store's log through an audit.Verifier against the
// stored checkpoints and returns the report.
func Verify(t testing.TB, st store.Store, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	cps, err := st.Audit().Checkpoints(context.Background())
	if err != nil {
		t.Fatalf("checkpoints: %v", err)
	}
	v := audit.NewVerifier(pub, cps)
	if err := st.Audit().Entries(context.Background(), store.AuditFilter{}, func(e audit.Entry) error {
		v.Add(&e)
		return nil
	}); err != nil {
		t.Fatalf("entries: %v", err)
	}
	return v.Finish()
}

func newKey(t testing.TB) (*audit.Signer, ed25519.PublicKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := audit.NewSigner(key)
	return s, s.PublicKey()
}

func testCreateGet(t *testing.T, st store.Store) {
	ctx := context.Background()
	var now time.Time
	var got *resource.Object
	err := st.Write(ctx, alice, func(tx store.Tx) error {
		now = tx.Now()
		var err error
		got, err = tx.Create(ctx, Obj("Release", "shop-1", map[string]string{"app": "shop"}, `{"version": "1.0.0"}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Revision != 1 {
		t.Errorf("first revision = %d, want 1", got.Metadata.Revision)
	}
	if !got.Metadata.CreatedAt.Equal(now) || !got.Metadata.UpdatedAt.Equal(now) {
		t.Errorf("timestamps = %v/%v, want tx.Now() %v", got.Metadata.CreatedAt, got.Metadata.UpdatedAt, now)
	}
	stored, err := st.Get(ctx, "Release", "shop-1")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, got), mustJSON(t, stored); a != b {
		t.Errorf("Get differs from what Create returned:\n got %s\nwant %s", b, a)
	}
	var spec struct{ Version string }
	if err := stored.DecodeSpec(&spec); err != nil || spec.Version != "1.0.0" {
		t.Errorf("spec = %+v, %v; want version 1.0.0", spec, err)
	}
	if stored.Kind != "Release" || stored.APIVersion != resource.APIVersion || stored.Metadata.Labels["app"] != "shop" {
		t.Errorf("stored object = %s", mustJSON(t, stored))
	}
	if _, err := st.Get(ctx, "Release", "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get missing: err = %v, want ErrNotFound", err)
	}
	if _, err := st.Get(ctx, "Environment", "shop-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get in another kind: err = %v, want ErrNotFound", err)
	}
}

func testCreateExisting(t *testing.T, st store.Store) {
	first := Create(t, st, Obj("Environment", "prod", nil, `{"tier":"production"}`))
	err := st.Write(context.Background(), alice, func(tx store.Tx) error {
		_, err := tx.Create(context.Background(), Obj("Environment", "prod", nil, `{"tier":"dev"}`))
		return err
	})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: err = %v, want ErrConflict saying already exists", err)
	}
	got, err := st.Get(context.Background(), "Environment", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Spec) != `{"tier":"production"}` || got.Metadata.Revision != first.Metadata.Revision {
		t.Errorf("stored object changed by a failed create: %s", mustJSON(t, got))
	}
	// The same name in another kind is a different object.
	Create(t, st, Obj("Application", "prod", nil, `{}`))
}

func testList(t *testing.T, st store.Store) {
	for _, n := range []string{"c", "a-b", "ab", "a.b", "b", "a"} {
		Create(t, st, Obj("Release", n, nil, `{}`))
	}
	Create(t, st, Obj("Environment", "zz", nil, `{}`))
	got, err := st.List(context.Background(), "Release", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a-b", "a.b", "ab", "b", "c"}
	if !slices.Equal(names(got), want) {
		t.Errorf("List = %v, want %v (byte order by name)", names(got), want)
	}
	for _, o := range got {
		if o.Kind != "Release" || o.Metadata.Revision == 0 || o.Metadata.CreatedAt.IsZero() {
			t.Errorf("listed object %s lacks kind, revision or timestamps", mustJSON(t, o))
		}
	}
	empty, err := st.List(context.Background(), "Flag", nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("List of an empty kind = %v, %v", names(empty), err)
	}
}

func testUpdateDelete(t *testing.T, st store.Store) {
	ctx := context.Background()
	v1 := Create(t, st, Obj("Flag", "dark-mode", map[string]string{"team": "web"}, `{"on":false}`))
	in := v1.DeepCopy()
	in.Spec = json.RawMessage(`{"on":true}`)
	in.Metadata.Labels = map[string]string{"team": "mobile"}
	v2, err := update(st, in)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Metadata.Revision <= v1.Metadata.Revision {
		t.Errorf("revision after update = %d, want > %d", v2.Metadata.Revision, v1.Metadata.Revision)
	}
	got, err := st.Get(ctx, "Flag", "dark-mode")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Spec) != `{"on":true}` || got.Metadata.Revision != v2.Metadata.Revision || got.Metadata.Labels["team"] != "mobile" {
		t.Errorf("after update stored %s", mustJSON(t, got))
	}
	if objs, _ := st.List(ctx, "Flag", resource.Selector{{Key: "team", Op: resource.Equals, Values: []string{"web"}}}); len(objs) != 0 {
		t.Errorf("old label still selects: %v", names(objs))
	}
	if objs, _ := st.List(ctx, "Flag", resource.Selector{{Key: "team", Op: resource.Equals, Values: []string{"mobile"}}}); len(objs) != 1 {
		t.Errorf("new label does not select: %v", names(objs))
	}
	// Update without a revision is an unconditional replace.
	in.Metadata.Revision = 0
	in.Spec = json.RawMessage(`{"on":false}`)
	v3, err := update(st, in)
	if err != nil || v3.Metadata.Revision <= v2.Metadata.Revision {
		t.Fatalf("update without revision: %v, %+v", err, v3)
	}
	if _, err := update(st, Obj("Flag", "nope", nil, `{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update missing: err = %v, want ErrNotFound", err)
	}
	if err := del(st, "Flag", "dark-mode", v1.Metadata.Revision); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete at stale revision: err = %v, want ErrConflict", err)
	}
	if _, err := st.Get(ctx, "Flag", "dark-mode"); err != nil {
		t.Errorf("a failed delete removed the object: %v", err)
	}
	if err := del(st, "Flag", "dark-mode", v3.Metadata.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "Flag", "dark-mode"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after delete: err = %v, want ErrNotFound", err)
	}
	if objs, _ := st.List(ctx, "Flag", resource.Selector{{Key: "team", Op: resource.Exists}}); len(objs) != 0 {
		t.Errorf("deleted object still listed: %v", names(objs))
	}
	if err := del(st, "Flag", "dark-mode", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete missing: err = %v, want ErrNotFound", err)
	}
	// The name can be used again.
	again := Create(t, st, Obj("Flag", "dark-mode", nil, `{}`))
	if again.Metadata.Revision <= v3.Metadata.Revision {
		t.Errorf("recreated revision %d, want > %d", again.Metadata.Revision, v3.Metadata.Revision)
	}
}

func testSelectors(t *testing.T, st store.Store) {
	for _, o := range []struct {
		name   string
		labels map[string]string
	}{
		{"a", map[string]string{"app": "shop", "tier": "web"}},
		{"b", map[string]string{"app": "shop", "tier": "db"}},
		{"c", map[string]string{"app": "cart", "tier": "web"}},
		{"d", map[string]string{"app": "cart"}},
		{"e", nil},
	} {
		Create(t, st, Obj("Release", o.name, o.labels, `{}`))
	}
	Create(t, st, Obj("Application", "x", map[string]string{"app": "shop"}, `{}`))
	cases := []struct {
		sel  string
		want []string
	}{
		{"", []string{"a", "b", "c", "d", "e"}},
		{"app=shop", []string{"a", "b"}},
		{"app==shop,tier=web", []string{"a"}},
		{"app=nothing", nil},
		{"app!=shop", []string{"c", "d", "e"}},
		{"tier in (web,db)", []string{"a", "b", "c"}},
		{"tier notin (web)", []string{"b", "d", "e"}},
		{"tier", []string{"a", "b", "c"}},
		{"!tier", []string{"d", "e"}},
		{"app=cart,!tier", []string{"d"}},
		{"app,tier!=db", []string{"a", "c", "d"}},
	}
	for _, c := range cases {
		t.Run(c.sel, func(t *testing.T) {
			sel, err := resource.ParseSelector(c.sel)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.List(context.Background(), "Release", sel)
			if err != nil {
				t.Fatal(err)
			}
			if g := names(got); !slices.Equal(g, c.want) && !(len(g) == 0 && len(c.want) == 0) {
				t.Errorf("List(%q) = %v, want %v", c.sel, g, c.want)
			}
		})
	}
}

func testCAS(t *testing.T, st store.Store) {
	base := Create(t, st, Obj("Promotion", "p1", nil, `{"step":0}`))
	const n = 16
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      []int
		conflicts int
		others    []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := base.DeepCopy()
			o.Spec = json.RawMessage(fmt.Sprintf(`{"step":%d}`, i+1))
			<-start
			_, err := update(st, o)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, i+1)
			case errors.Is(err, store.ErrConflict):
				conflicts++
			default:
				others = append(others, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 || conflicts != n-1 || len(others) != 0 {
		t.Fatalf("wins %v, conflicts %d, other errors %v; want exactly one winner and %d conflicts", wins, conflicts, others, n-1)
	}
	got, err := st.Get(context.Background(), "Promotion", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"step":%d}`, wins[0]); string(got.Spec) != want {
		t.Errorf("stored spec %s, want the winner's %s", got.Spec, want)
	}
	if seq, _ := head(t, st); seq != base.Metadata.Revision+1 {
		t.Errorf("audit head %d, want %d: losers must not append entries", seq, base.Metadata.Revision+1)
	}
}

func testConflictMessage(t *testing.T, st store.Store) {
	v1 := Create(t, st, Obj("Rollout", "shop-prod", nil, `{}`))
	if _, err := update(st, v1); err != nil {
		t.Fatal(err)
	}
	_, err := update(st, v1) // v1 still carries the old revision
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	for _, want := range []string{"Rollout", "shop-prod", fmt.Sprint(v1.Metadata.Revision), fmt.Sprint(v1.Metadata.Revision + 1)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict message %q does not name %q", err, want)
		}
	}
	err = del(st, "Rollout", "shop-prod", v1.Metadata.Revision)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "shop-prod") {
		t.Errorf("delete conflict: %v", err)
	}
}

func testRollback(t *testing.T, st store.Store) {
	ctx := context.Background()
	b := Create(t, st, Obj("Release", "b", map[string]string{"app": "shop"}, `{"v":1}`))
	seq0, hash0 := head(t, st)
	boom := errors.New("boom")
	err := st.Write(ctx, alice, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, Obj("Release", "a", map[string]string{"app": "shop"}, `{}`)); err != nil {
			return err
		}
		bb := b.DeepCopy()
		bb.Spec = json.RawMessage(`{"v":2}`)
		if _, err := tx.Update(ctx, bb); err != nil {
			return err
		}
		if err := tx.Record(ctx, "verify", "Release", "b", ""); err != nil {
			return err
		}
		if err := tx.Delete(ctx, "Release", "b", 0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write returned %v, want the function's error", err)
	}
	if _, err := st.Get(ctx, "Release", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("created object survived the rollback: %v", err)
	}
	got, err := st.Get(ctx, "Release", "b")
	if err != nil || string(got.Spec) != `{"v":1}` || got.Metadata.Revision != b.Metadata.Revision {
		t.Errorf("updated and deleted object not restored: %v %v", err, got)
	}
	if objs, _ := st.List(ctx, "Release", resource.Selector{{Key: "app", Op: resource.Equals, Values: []string{"shop"}}}); !slices.Equal(names(objs), []string{"b"}) {
		t.Errorf("label index after rollback selects %v, want [b]", names(objs))
	}
	if seq, hash := head(t, st); seq != seq0 || hash != hash0 {
		t.Errorf("head moved to %d %s, want %d %s", seq, hash, seq0, hash0)
	}
	if es := entries(t, st, store.AuditFilter{}); len(es) != int(seq0) {
		t.Errorf("%d entries after rollback, want %d", len(es), seq0)
	}
	// The next write continues the chain from the old head.
	c := Create(t, st, Obj("Release", "c", nil, `{}`))
	if c.Metadata.Revision != seq0+1 {
		t.Errorf("next revision %d, want %d", c.Metadata.Revision, seq0+1)
	}
	_, pub := newKey(t)
	if r := Verify(t, st, pub); !r.OK() {
		t.Errorf("chain after rollback: %s", r)
	}
}

// testIsolation makes many callers write at once, every other one failing
// after it has changed things, so failures share transactions with
// successes under group commit.
func testIsolation(t *testing.T, st store.Store) {
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Write(ctx, alice, func(tx store.Tx) error {
				if _, err := tx.Create(ctx, Obj("Release", fmt.Sprintf("r%02d", i), map[string]string{"i": fmt.Sprint(i)}, `{}`)); err != nil {
					return err
				}
				if err := tx.Record(ctx, "note", "Release", fmt.Sprintf("r%02d", i), ""); err != nil {
					return err
				}
				if i%2 == 1 {
					return fmt.Errorf("caller %d fails", i)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	var want []string
	for i, err := range errs {
		if (err != nil) != (i%2 == 1) {
			t.Errorf("caller %d: err = %v", i, err)
		}
		if i%2 == 0 {
			want = append(want, fmt.Sprintf("r%02d", i))
		}
	}
	got, err := st.List(ctx, "Release", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(got), want) {
		t.Errorf("stored %v, want only the successful callers' %v", names(got), want)
	}
	es := entries(t, st, store.AuditFilter{})
	if len(es) != 2*len(want) {
		t.Errorf("%d entries, want %d", len(es), 2*len(want))
	}
	for _, e := range es {
		var i int
		fmt.Sscanf(e.Name, "r%02d", &i)
		if i%2 == 1 {
			t.Errorf("entry %d records failed caller %s", e.Seq, e.Name)
		}
	}
	_, pub := newKey(t)
	if r := Verify(t, st, pub); !r.OK() || r.Entries != int64(len(es)) {
		t.Errorf("chain: %s", r)
	}
}

func testReadOwnWrites(t *testing.T, st store.Store) {
	ctx := context.Background()
	Create(t, st, Obj("Release", "old", map[string]string{"app": "shop"}, `{}`))
	err := st.Write(ctx, alice, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, Obj("Release", "new", map[string]string{"app": "shop"}, `{"x":1}`)); err != nil {
			return err
		}
		got, err := tx.Get(ctx, "Release", "new")
		if err != nil {
			return fmt.Errorf("get own create: %w", err)
		}
		if string(got.Spec) != `{"x":1}` {
			return fmt.Errorf("own create reads back %s", got.Spec)
		}
		if err := tx.Delete(ctx, "Release", "old", 0); err != nil {
			return err
		}
		objs, err := tx.List(ctx, "Release", resource.Selector{{Key: "app", Op: resource.Equals, Values: []string{"shop"}}})
		if err != nil {
			return err
		}
		if !slices.Equal(names(objs), []string{"new"}) {
			return fmt.Errorf("list inside the write = %v, want [new]", names(objs))
		}
		if _, err := tx.Get(ctx, "Release", "old"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("own delete still readable: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testRevisionIsSeq(t *testing.T, st store.Store) {
	ctx := context.Background()
	var nows []time.Time
	var objs []*resource.Object
	err := st.Write(ctx, store.Actor{Name: "carol", Reason: "release day"}, func(tx store.Tx) error {
		nows = append(nows, tx.Now())
		for _, n := range []string{"x", "y"} {
			o, err := tx.Create(ctx, Obj("Release", n, nil, `{"n":"`+n+`"}`))
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	y := objs[1].DeepCopy()
	y.Status = json.RawMessage(`{"phase":"Ready"}`)
	y2, err := update(st, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := del(st, "Release", "x", 0); err != nil {
		t.Fatal(err)
	}
	es := entries(t, st, store.AuditFilter{})
	if len(es) != 4 {
		t.Fatalf("%d entries, want 4", len(es))
	}
	wantActions := []string{"create", "create", "update", "delete"}
	wantNames := []string{"x", "y", "y", "x"}
	for i, e := range es {
		if e.Seq != int64(i+1) || e.Revision != e.Seq {
			t.Errorf("entry %d: seq %d revision %d, want both %d", i, e.Seq, e.Revision, i+1)
		}
		if e.Action != wantActions[i] || e.Kind != "Release" || e.Name != wantNames[i] {
			t.Errorf("entry %d: %s %s/%s, want %s Release/%s", e.Seq, e.Action, e.Kind, e.Name, wantActions[i], wantNames[i])
		}
	}
	for i, o := range []*resource.Object{objs[0], objs[1], y2} {
		if o.Metadata.Revision != es[i].Seq {
			t.Errorf("object %s revision %d, want its entry's seq %d", o.Ref(), o.Metadata.Revision, es[i].Seq)
		}
		h, err := audit.StateHash(o)
		if err != nil {
			t.Fatal(err)
		}
		if es[i].StateHash != h {
			t.Errorf("entry %d state hash %s, want the hash of the stored object %s", es[i].Seq, es[i].StateHash, h)
		}
	}
	stored, err := st.Get(ctx, "Release", "y")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := audit.StateHash(stored); h != es[2].StateHash {
		t.Errorf("hash of Get result %s differs from the entry's %s", h, es[2].StateHash)
	}
	if h, _ := audit.StateHash(nil); es[3].StateHash != h {
		t.Errorf("delete entry state hash %s, want hash of null %s", es[3].StateHash, h)
	}
	first := es[0]
	if first.Actor != "carol" || first.Reason != "release day" || !first.Time.Equal(nows[0]) {
		t.Errorf("entry 1 actor %q reason %q time %v, want carol, release day, %v", first.Actor, first.Reason, first.Time, nows[0])
	}
	if !objs[0].Metadata.UpdatedAt.Equal(nows[0]) {
		t.Errorf("UpdatedAt %v, want tx.Now() %v", objs[0].Metadata.UpdatedAt, nows[0])
	}
	if es[0].PrevHash != audit.GenesisHash {
		t.Errorf("first entry prevHash %s, want genesis", es[0].PrevHash)
	}
	for i := 1; i < len(es); i++ {
		if es[i].PrevHash != es[i-1].Hash {
			t.Errorf("entry %d does not link to entry %d", es[i].Seq, es[i-1].Seq)
		}
	}
	if seq, hash := head(t, st); seq != 4 || hash != es[3].Hash {
		t.Errorf("head = %d %s, want 4 %s", seq, hash, es[3].Hash)
	}
}

func testChain(t *testing.T, st store.Store) {
	ctx := context.Background()
	if seq, hash := head(t, st); seq != 0 || hash != audit.GenesisHash {
		t.Errorf("empty head = %d %s, want 0 and the genesis hash", seq, hash)
	}
	signer, pub := newKey(t)
	for i := range 5 {
		Create(t, st, Obj("Evidence", fmt.Sprintf("e%d", i), nil, `{}`))
	}
	if r := audit.NewVerifier(pub, nil); r == nil {
		t.Fatal("no verifier")
	}
	if r := Verify(t, st, pub); !r.OK() || r.Entries != 5 || r.LastCheckpoint != nil {
		t.Fatalf("verify without checkpoints: %s", r)
	}
	seq, hash := head(t, st)
	cp1 := signer.Sign(seq, hash, time.Now())
	if err := st.Audit().AddCheckpoint(ctx, cp1); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		Create(t, st, Obj("Evidence", fmt.Sprintf("f%d", i), nil, `{}`))
	}
	seq, hash = head(t, st)
	cp2 := signer.Sign(seq, hash, time.Now())
	if err := st.Audit().AddCheckpoint(ctx, cp2); err != nil {
		t.Fatal(err)
	}
	Create(t, st, Obj("Evidence", "g", nil, `{}`))
	cps, err := st.Audit().Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Size != 5 || cps[1].Size != 8 {
		t.Fatalf("checkpoints = %+v, want sizes 5 and 8", cps)
	}
	for _, c := range cps {
		if !audit.VerifyCheckpoint(pub, c) {
			t.Errorf("checkpoint at %d no longer verifies after a round trip through the store", c.Size)
		}
	}
	r := Verify(t, st, pub)
	if !r.OK() || r.Entries != 9 || r.Checkpoints != 2 || r.LastCheckpoint == nil || r.LastCheckpoint.Size != 8 {
		t.Fatalf("verify with checkpoints: %s (%+v)", r, r)
	}
	// A checkpoint by another key must break verification.
	other, _ := newKey(t)
	if err := st.Audit().AddCheckpoint(ctx, other.Sign(9, r.Head, time.Now())); err != nil {
		t.Fatal(err)
	}
	if r := Verify(t, st, pub); r.OK() {
		t.Errorf("a checkpoint signed by another key verified: %s", r)
	}
}

func testConcurrentWriters(t *testing.T, st store.Store) {
	ctx := context.Background()
	const writers, each = 50, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actor := store.Actor{Name: fmt.Sprintf("w%d", w)}
			for i := range each {
				err := st.Write(ctx, actor, func(tx store.Tx) error {
					_, err := tx.Create(ctx, Obj("Release", fmt.Sprintf("w%d-%d", w, i), map[string]string{"w": fmt.Sprint(w)}, `{}`))
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	objs, err := st.List(ctx, "Release", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != writers*each {
		t.Errorf("%d objects, want %d", len(objs), writers*each)
	}
	seen := map[int64]bool{}
	for _, o := range objs {
		if seen[o.Metadata.Revision] {
			t.Errorf("revision %d given twice", o.Metadata.Revision)
		}
		seen[o.Metadata.Revision] = true
	}
	_, pub := newKey(t)
	r := Verify(t, st, pub)
	if !r.OK() || r.Entries != writers*each {
		t.Errorf("chain: %s, want %d entries intact", r, writers*each)
	}
	if seq, _ := head(t, st); seq != writers*each {
		t.Errorf("head %d, want %d", seq, writers*each)
	}
}

// testLargeWrites writes more rows in one batch than one of SQLite's
// multi-row statements takes (objects, labels and audit entries; on
// PostgreSQL, long arrays in one statement), then replaces and
// deletes many of them in one write: every row must land, the old labels
// must go, and the chain must verify.
func testLargeWrites(t *testing.T, st store.Store) {
	ctx := context.Background()
	const n = 300 // over two chunks of 128 rows; 900 label rows
	err := st.Write(ctx, alice, func(tx store.Tx) error {
		for i := range n {
			labels := map[string]string{"app": "shop", "shard": fmt.Sprint(i % 3), "n": fmt.Sprint(i)}
			if _, err := tx.Create(ctx, Obj("Release", fmt.Sprintf("big-%03d", i), labels, `{"v":1}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	shop := resource.Selector{{Key: "app", Op: resource.Equals, Values: []string{"shop"}}}
	if objs, err := st.List(ctx, "Release", shop); err != nil || len(objs) != n {
		t.Fatalf("listed %d releases by label (%v), want %d", len(objs), err, n)
	}
	// Replace the first 200 (their labels change) and delete the last 100.
	err = st.Write(ctx, bob, func(tx store.Tx) error {
		for i := range n {
			name := fmt.Sprintf("big-%03d", i)
			if i >= 200 {
				if err := tx.Delete(ctx, "Release", name, 0); err != nil {
					return err
				}
				continue
			}
			o := Obj("Release", name, map[string]string{"app": "shop", "moved": "yes"}, `{"v":2}`)
			if _, err := tx.Update(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, "Release", shop)
	if err != nil || len(objs) != 200 {
		t.Fatalf("after replacing 200 and deleting 100: listed %d (%v), want 200", len(objs), err)
	}
	for _, o := range objs {
		if string(o.Spec) != `{"v":2}` || o.Metadata.Labels["moved"] != "yes" || o.Metadata.Labels["shard"] != "" {
			t.Fatalf("%s stored as %s, want spec v2 with only the new labels", o.Metadata.Name, mustJSON(t, o))
		}
	}
	shard := resource.Selector{{Key: "shard", Op: resource.Exists}}
	if objs, err := st.List(ctx, "Release", shard); err != nil || len(objs) != 0 {
		t.Errorf("old labels still select %d objects (%v)", len(objs), err)
	}
	if seq, _ := head(t, st); seq != 2*n {
		t.Errorf("head %d, want %d (one entry per change)", seq, 2*n)
	}
	_, pub := newKey(t)
	if r := Verify(t, st, pub); !r.OK() || r.Entries != 2*n {
		t.Errorf("chain: %s, want %d entries intact", r, 2*n)
	}
}

// recv waits for the next event; the timeout only keeps a broken store from
// hanging the suite.
func recv(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return store.Event{}
}

func expectEvent(t *testing.T, ev store.Event, typ store.EventType, kind, name string, rev int64) {
	t.Helper()
	if ev.Type != typ || ev.Kind != kind || ev.Name != name || ev.Revision != rev {
		t.Fatalf("event %s %s/%s@%d, want %s %s/%s@%d", ev.Type, ev.Kind, ev.Name, ev.Revision, typ, kind, name, rev)
	}
	switch typ {
	case store.Deleted:
		if ev.Object != nil {
			t.Errorf("deleted event carries an object")
		}
	default:
		if ev.Object == nil || ev.Object.Metadata.Name != name || ev.Object.Metadata.Revision != rev {
			t.Errorf("event object = %+v, want %s at revision %d", ev.Object, name, rev)
		}
	}
}

func testWatch(t *testing.T, st store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := st.Watch(ctx, "Release", 0)
	if err != nil {
		t.Fatal(err)
	}
	all, err := st.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Each step waits for its events on both watches before the next
	// change, so the stored object is still the one the event names.
	a := Create(t, st, Obj("Release", "a", nil, `{"v":1}`))
	expectEvent(t, recv(t, ch), store.Created, "Release", "a", a.Metadata.Revision)
	expectEvent(t, recv(t, all), store.Created, "Release", "a", a.Metadata.Revision)

	env := Create(t, st, Obj("Environment", "prod", nil, `{}`))
	expectEvent(t, recv(t, all), store.Created, "Environment", "prod", env.Metadata.Revision)

	a.Spec = json.RawMessage(`{"v":2}`)
	a2, err := update(st, a)
	if err != nil {
		t.Fatal(err)
	}
	ev := recv(t, ch)
	expectEvent(t, ev, store.Updated, "Release", "a", a2.Metadata.Revision)
	if string(ev.Object.Spec) != `{"v":2}` {
		t.Errorf("updated event spec %s, want {\"v\":2}", ev.Object.Spec)
	}
	expectEvent(t, recv(t, all), store.Updated, "Release", "a", a2.Metadata.Revision)

	// A Record entry is no change to an object: no event.
	if err := st.Write(ctx, alice, func(tx store.Tx) error {
		return tx.Record(ctx, "export", "Release", "a", "")
	}); err != nil {
		t.Fatal(err)
	}
	if err := del(st, "Release", "a", 0); err != nil {
		t.Fatal(err)
	}
	seq, _ := head(t, st)
	expectEvent(t, recv(t, ch), store.Deleted, "Release", "a", seq)
	expectEvent(t, recv(t, all), store.Deleted, "Release", "a", seq)

	cancel()
	for range ch { // must close once ctx ends
	}
	for range all {
	}
}

func testWatchResume(t *testing.T, st store.Store) {
	a := Create(t, st, Obj("Release", "a", nil, `{"v":1}`))
	a.Spec = json.RawMessage(`{"v":2}`)
	a2, err := update(st, a)
	if err != nil {
		t.Fatal(err)
	}
	b := Create(t, st, Obj("Release", "b", nil, `{}`))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := st.Watch(ctx, "Release", a.Metadata.Revision)
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, recv(t, ch), store.Updated, "Release", "a", a2.Metadata.Revision)
	expectEvent(t, recv(t, ch), store.Created, "Release", "b", b.Metadata.Revision)
	if err := del(st, "Release", "b", b.Metadata.Revision); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, recv(t, ch), store.Deleted, "Release", "b", b.Metadata.Revision+1)
	// Resuming from the head delivers nothing old.
	seq, _ := head(t, st)
	ch2, err := st.Watch(ctx, "Release", seq)
	if err != nil {
		t.Fatal(err)
	}
	c := Create(t, st, Obj("Release", "c", nil, `{}`))
	expectEvent(t, recv(t, ch2), store.Created, "Release", "c", c.Metadata.Revision)
}

func testEntriesFilters(t *testing.T, st store.Store) {
	ctx := context.Background()
	for i, a := range []store.Actor{alice, bob, alice, bob, alice} {
		kind := "Release"
		if i%2 == 1 {
			kind = "Approval"
		}
		if err := st.Write(ctx, a, func(tx store.Tx) error {
			_, err := tx.Create(ctx, Obj(kind, fmt.Sprintf("o%d", i), nil, `{}`))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	all := entries(t, st, store.AuditFilter{})
	if len(all) != 5 {
		t.Fatalf("%d entries, want 5", len(all))
	}
	seqs := func(es []audit.Entry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	since := all[2].Time
	var wantSince []int64
	for _, e := range all {
		if !e.Time.Before(since) {
			wantSince = append(wantSince, e.Seq)
		}
	}
	cases := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"actor", store.AuditFilter{Actor: "bob"}, []int64{2, 4}},
		{"kind", store.AuditFilter{Kind: "Release"}, []int64{1, 3, 5}},
		{"after", store.AuditFilter{After: 3}, []int64{4, 5}},
		{"limit", store.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"actor kind after limit", store.AuditFilter{Actor: "alice", Kind: "Release", After: 1, Limit: 1}, []int64{3}},
		{"since", store.AuditFilter{Since: since}, wantSince},
		{"nothing", store.AuditFilter{Actor: "mallory"}, nil},
	}
	for _, c := range cases {
		if got := seqs(entries(t, st, c.f)); !slices.Equal(got, c.want) {
			t.Errorf("%s: entries %v, want %v", c.name, got, c.want)
		}
	}
	if all[0].Reason != "ticket-1" || all[1].Reason != "" {
		t.Errorf("reasons %q %q, want ticket-1 and empty", all[0].Reason, all[1].Reason)
	}
	stop := errors.New("stop")
	n := 0
	err := st.Audit().Entries(ctx, store.AuditFilter{}, func(audit.Entry) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("Entries after fn error: err %v after %d calls, want stop after 2", err, n)
	}
}

func testCreatedAtImmutable(t *testing.T, st store.Store) {
	v1 := Create(t, st, Obj("Window", "weekdays", nil, `{}`))
	in := v1.DeepCopy()
	in.Metadata.CreatedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	in.Metadata.UpdatedAt = in.Metadata.CreatedAt
	v2, err := update(st, in)
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Metadata.CreatedAt.Equal(v1.Metadata.CreatedAt) {
		t.Errorf("Update returned CreatedAt %v, want the original %v", v2.Metadata.CreatedAt, v1.Metadata.CreatedAt)
	}
	if v2.Metadata.UpdatedAt.Equal(in.Metadata.UpdatedAt) {
		t.Errorf("Update kept the caller's UpdatedAt")
	}
	got, err := st.Get(context.Background(), "Window", "weekdays")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Metadata.CreatedAt.Equal(v1.Metadata.CreatedAt) {
		t.Errorf("stored CreatedAt %v, want the original %v", got.Metadata.CreatedAt, v1.Metadata.CreatedAt)
	}
	// Nor may Create take a caller's timestamps.
	c := Obj("Window", "weekends", nil, `{}`)
	c.Metadata.CreatedAt = in.Metadata.CreatedAt
	c.Metadata.Revision = 99
	made := Create(t, st, c)
	if made.Metadata.CreatedAt.Equal(c.Metadata.CreatedAt) || made.Metadata.Revision == 99 {
		t.Errorf("Create kept caller's metadata: %+v", made.Metadata)
	}
}

func testCancelled(t *testing.T, st store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := st.Write(ctx, alice, func(tx store.Tx) error {
		ran = true
		_, err := tx.Create(context.Background(), Obj("Release", "x", nil, `{}`))
		return err
	})
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Write with a cancelled context: err %v, fn ran %v", err, ran)
	}
	if seq, _ := head(t, st); seq != 0 {
		t.Errorf("head %d, want 0", seq)
	}
}

func testRecord(t *testing.T, st store.Store) {
	ctx := context.Background()
	if err := st.Write(ctx, bob, func(tx store.Tx) error {
		return tx.Record(ctx, "token.shown", "Token", "ci", "sha256:abc")
	}); err != nil {
		t.Fatal(err)
	}
	es := entries(t, st, store.AuditFilter{})
	if len(es) != 1 {
		t.Fatalf("%d entries, want 1", len(es))
	}
	e := es[0]
	if e.Action != "token.shown" || e.Kind != "Token" || e.Name != "ci" || e.StateHash != "sha256:abc" || e.Actor != "bob" || e.Revision != 1 {
		t.Errorf("entry = %+v", e)
	}
	if _, err := st.Get(ctx, "Token", "ci"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Record created an object: %v", err)
	}
}

func testAuditNote(t *testing.T, st store.Store) {
	ctx := context.Background()
	if err := st.Write(ctx, alice, func(tx store.Tx) error {
		if _, err := tx.Create(store.WithAuditNote(ctx, "enabled: false → true"), Obj("Flag", "a", nil, `{}`)); err != nil {
			return err
		}
		_, err := tx.Create(ctx, Obj("Flag", "b", nil, `{}`))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, bob, func(tx store.Tx) error {
		return tx.Delete(store.WithAuditNote(ctx, "removed"), "Flag", "b", 0)
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries(t, st, store.AuditFilter{}) {
		got = append(got, e.Action+" "+e.Name+": "+e.Reason)
	}
	want := []string{"create a: ticket-1; enabled: false → true", "create b: ticket-1", "delete b: removed"}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %q, want %q", got, want)
	}
}

func testClosed(t *testing.T, st store.Store) {
	Create(t, st, Obj("Release", "a", nil, `{}`))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	err := st.Write(context.Background(), alice, func(tx store.Tx) error { return nil })
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := st.Get(context.Background(), "Release", "a"); err == nil {
		t.Errorf("Get after Close succeeded")
	}
}

func testBlobs(t *testing.T, st store.Store) {
	ctx := context.Background()
	data := []byte("<testsuites><testsuite tests=\"1\"/></testsuites>")
	var d1, d2 string
	b1, err := st.PrepareBlob(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b1.Size != int64(len(data)) {
		t.Fatalf("PrepareBlob says %d bytes, want %d", b1.Size, len(data))
	}
	b2, err := st.PrepareBlob(bytes.NewReader(append([]byte(nil), data...)))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, alice, func(tx store.Tx) error {
		if err := tx.PutBlob(ctx, b1); err != nil {
			return err
		}
		d1 = b1.Digest
		if got, err := tx.Blob(ctx, d1); err != nil || string(got) != string(data) {
			return fmt.Errorf("read own blob: %q, %v", got, err)
		}
		d2 = b2.Digest
		return tx.PutBlob(ctx, b2)
	}); err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || d1 != "sha256:"+hexSHA256(data) {
		t.Fatalf("digests %s and %s; want the sha256 of the content", d1, d2)
	}
	got, err := st.Blob(ctx, d1)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Blob = %q, %v", got, err)
	}
	// A large document survives the round trip byte for byte.
	big := bytes.Repeat([]byte(`{"ruleId":"G401","level":"error"},`), 1<<16)
	big = append(big, 0xff, 0x00, 0x7f)
	bb, err := st.PrepareBlob(bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	dBig := bb.Digest
	if err := st.Write(ctx, alice, func(tx store.Tx) error { return tx.PutBlob(ctx, bb) }); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Blob(ctx, dBig); err != nil || !bytes.Equal(got, big) || dBig != "sha256:"+hexSHA256(big) {
		t.Fatalf("large blob: %d bytes back, %v", len(got), err)
	}
	if _, err := st.Blob(ctx, "sha256:"+hexSHA256([]byte("absent"))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing blob: %v, want ErrNotFound", err)
	}
	// A failed write keeps no blob.
	other := []byte("rolled back")
	bo, _ := st.PrepareBlob(bytes.NewReader(other))
	st.Write(ctx, alice, func(tx store.Tx) error {
		if err := tx.PutBlob(ctx, bo); err != nil {
			return err
		}
		return errors.New("abort")
	})
	if _, err := st.Blob(ctx, "sha256:"+hexSHA256(other)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("blob of a failed write: %v, want ErrNotFound", err)
	}
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
