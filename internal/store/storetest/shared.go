package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/airlock-dev/airlock/internal/store"
)

// OpenConcurrently calls open n times at once (as n processes starting
// together would, racing to migrate) and closes the stores when t ends.
func OpenConcurrently(t *testing.T, n int, open func() (store.Store, error)) []store.Store {
	t.Helper()
	stores := make([]store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = open()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		st := stores[i]
		t.Cleanup(func() { st.Close() })
	}
	return stores
}

// SharedWriters writes through several stores on one database at once, as
// several airlock replicas would, and checks that every write landed in one
// unbroken chain.
func SharedWriters(t *testing.T, stores ...store.Store) {
	t.Helper()
	ctx := context.Background()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*writers*each)
	for s, st := range stores {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					err := st.Write(ctx, store.Actor{Name: fmt.Sprintf("replica-%d", s)}, func(tx store.Tx) error {
						_, err := tx.Create(ctx, Obj("Release", fmt.Sprintf("s%d-w%d-%d", s, w, i), nil, `{}`))
						return err
					})
					if err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := int64(len(stores) * writers * each)
	for i, st := range stores {
		objs, err := st.List(ctx, "Release", nil)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(objs)) != total {
			t.Errorf("store %d lists %d objects, want %d", i, len(objs), total)
		}
	}
	// Each store knows of the names the others created since it last
	// wrote: creating one again is a conflict, not a second object.
	for i, st := range stores {
		other := fmt.Sprintf("s%d-w0-0", (i+1)%len(stores))
		err := st.Write(ctx, store.Actor{Name: "again"}, func(tx store.Tx) error {
			_, err := tx.Create(ctx, Obj("Release", other, nil, `{}`))
			return err
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("store %d creating %s, which another store created: %v, want ErrConflict", i, other, err)
		}
	}
	_, pub := newKey(t)
	if r := Verify(t, stores[0], pub); !r.OK() || r.Entries != total {
		t.Errorf("chain: %s, want %d entries intact", r, total)
	}
}
