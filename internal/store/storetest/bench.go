package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// AppendWorkers is how many goroutines BenchAppend writes from.
const AppendWorkers = 64

// BenchAppend measures audit append throughput: b.N Writes, each creating
// one object, issued from AppendWorkers goroutines at once. It reports
// entries/s and the 99th percentile latency of one Write in ms.
func BenchAppend(b *testing.B, st store.Store) {
	ctx := context.Background()
	prefix := fmt.Sprintf("b%x", rand.Uint32())
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range AppendWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				obj := Obj("Release", fmt.Sprintf("%s-%d", prefix, i), map[string]string{"app": "shop"},
					`{"application":"shop","version":"1.4.2","digest":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`)
				t0 := time.Now()
				err := st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
					_, err := tx.Create(ctx, obj)
					return err
				})
				lat[i] = time.Since(t0)
				if err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

// BenchList measures listing 10,000 Release objects by label app=shop among
// 20,000; one op is one List.
func BenchList(b *testing.B, st store.Store) {
	ctx := context.Background()
	if err := SeedList(ctx, st); err != nil {
		b.Fatal(err)
	}
	sel := resource.Selector{{Key: "app", Op: resource.Equals, Values: []string{"shop"}}}
	b.ReportAllocs()
	for b.Loop() {
		objs, err := st.List(ctx, "Release", sel)
		if err != nil {
			b.Fatal(err)
		}
		if len(objs) != ListTotal/2 {
			b.Fatalf("listed %d, want %d", len(objs), ListTotal/2)
		}
	}
}

// ListTotal is how many releases SeedList writes; half are labelled
// app=shop.
const ListTotal = 20000

// SeedList writes the ListTotal releases BenchList lists, in writes of 500:
// even ones labelled app=shop, odd ones app=cart, all team=payments.
func SeedList(ctx context.Context, st store.Store) error {
	const batch = 500
	for start := 0; start < ListTotal; start += batch {
		err := st.Write(ctx, store.Actor{Name: "seed"}, func(tx store.Tx) error {
			for i := start; i < start+batch; i++ {
				app := "shop"
				if i%2 == 1 {
					app = "cart"
				}
				o := Obj("Release", fmt.Sprintf("%s-%05d", app, i), map[string]string{"app": app, "team": "payments"},
					fmt.Sprintf(`{"application":%q,"version":"1.0.%d","digest":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`, app, i))
				if _, err := tx.Create(ctx, o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed releases: %w", err)
		}
	}
	return nil
}
