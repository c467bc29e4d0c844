package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/store/storetest"

	msqlite "modernc.org/sqlite"
)

// notified records the calls of the SQL function airlock_test_notify,
// which TestNotifier's dialect uses as its Notify statement.
var notified struct {
	sync.Mutex
	at []time.Time
}

func init() {
	msqlite.MustRegisterScalarFunction("airlock_test_notify", 0, func(*msqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		notified.Lock()
		notified.at = append(notified.at, time.Now())
		notified.Unlock()
		return int64(1), nil
	})
}

func notifications() []time.Time {
	notified.Lock()
	defer notified.Unlock()
	return append([]time.Time(nil), notified.at...)
}

// TestNotifier runs the notifier against a real SQLite store whose Notify
// statement calls a function of the test, with 100 ms between
// notifications: a commit is announced at once when none was for 100 ms;
// commits during the pause after a notification share one, sent when the
// pause ends; and Close sends the one still owed before it returns.
func TestNotifier(t *testing.T) {
	notified.Lock()
	notified.at = nil
	notified.Unlock()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	d := sqlite.Dialect()
	d.Notify = "SELECT airlock_test_notify()"
	const every = 100 * time.Millisecond
	d.NotifyEvery = every
	st, err := sqlstore.New(ctx, db, d, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	commit := func() time.Time {
		t.Helper()
		n++
		storetest.Create(t, st, storetest.Obj("Release", fmt.Sprintf("r-%d", n), nil, `{"application":"shop"}`))
		return time.Now()
	}
	waitFor := func(want int, within time.Duration) []time.Time {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := notifications()
			if len(got) >= want || time.Now().After(deadline) {
				return got
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A read changes nothing and is not announced.
	if _, err := st.Get(ctx, "Release", "none"); err == nil {
		t.Fatal("Get of a missing object succeeded")
	}
	if got := waitFor(1, 2*every); len(got) != 0 {
		t.Fatalf("%d notifications before any commit, want 0", len(got))
	}

	first := commit()
	got := waitFor(1, every/2)
	if len(got) != 1 {
		t.Fatalf("%d notifications within %s of the first commit, want 1 at once", len(got), every/2)
	}
	// Three commits in the pause that follows share the next
	// notification, which waits for the pause to end.
	var last time.Time
	for range 3 {
		last = commit()
	}
	if last.Sub(got[0]) >= every {
		t.Skipf("three commits took %s, longer than the pause: the machine is too slow for this test's timing", last.Sub(first))
	}
	got = waitFor(2, 3*every)
	if len(got) != 2 {
		t.Fatalf("%d notifications after four commits (one, then three in the pause), want 2", len(got))
	}
	if gap := got[1].Sub(got[0]); gap < every {
		t.Errorf("second notification %s after the first, want at least NotifyEvery (%s)", gap, every)
	}
	if got[1].Before(last) {
		t.Errorf("second notification came before the last commit it announces")
	}

	// A commit in the pause after that is owed a notification, which
	// Close sends rather than drop (and no other came meanwhile: three in
	// all).
	if c := commit(); c.Sub(got[1]) >= every {
		t.Skipf("the commit took until %s after the notification, past the pause: the machine is too slow for this test's timing", c.Sub(got[1]))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := notifications(); len(got) != 3 {
		t.Errorf("%d notifications once Close returned, want 3: the last commit's was dropped", len(got))
	}
}
