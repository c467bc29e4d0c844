package flag_test

import (
	"hash/fnv"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
)

// TestBucketPinned pins buckets so that a change of hash, which would move
// users between variants on upgrade, fails here first.
func TestBucketPinned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, tk string
		want    uint64
	}{
		{"new-checkout", "user-1", 77065},
		{"new-checkout", "user-2", 71867},
		{"new-checkout", "ann@shop.example", 1218},
		{"dark-mode", "user-1", 89058},
		{"", "", 13971},
	}
	for _, tt := range tests {
		if got := flag.Bucket(tt.key, tt.tk); got != tt.want {
			t.Errorf("Bucket(%q, %q) = %d, want %d", tt.key, tt.tk, got, tt.want)
		}
	}
}

// TestBucketShares checks each variant's share over 1,000,000 targeting
// keys is within 0.3 percentage points of its weight, for random keys and
// for sequential ones (user-0, user-1, ...), which a weak hash clusters.
func TestBucketShares(t *testing.T) {
	t.Parallel()
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	keys := map[string]func(i int) string{
		"random":     func(int) string { return strconv.FormatUint(rng.Uint64(), 36) },
		"sequential": func(i int) string { return "user-" + strconv.Itoa(i) },
	}
	splits := [][]flag.Split{
		{{Variant: "a", Weight: 25}, {Variant: "b", Weight: 75}},
		{{Variant: "a", Weight: 1}, {Variant: "b", Weight: 99}},
		{{Variant: "a", Weight: 10}, {Variant: "b", Weight: 20}, {Variant: "c", Weight: 30}, {Variant: "d", Weight: 40}},
		{{Variant: "a", Weight: 33.333}, {Variant: "b", Weight: 33.333}, {Variant: "c", Weight: 33.334}},
	}
	for kname, gen := range keys {
		for si, sp := range splits {
			s := flag.Spec{App: "shop", Environment: "prod", Key: "k" + strconv.Itoa(si), Type: flag.String, Enabled: true,
				Variants: map[string]any{"a": "a", "b": "b", "c": "c", "d": "d"}, DefaultVariant: "a", Fractional: sp}
			e := mustCompile(t, s, nil)
			count := map[string]int{}
			for i := 0; i < n; i++ {
				count[e.Evaluate(flag.Context{TargetingKey: gen(i)}).Variant]++
			}
			for _, x := range sp {
				share := 100 * float64(count[x.Variant]) / n
				if d := share - x.Weight; d > 0.3 || d < -0.3 {
					t.Errorf("%s keys, split %d: variant %s has %.3f%%, weight %.3f%%", kname, si, x.Variant, share, x.Weight)
				}
			}
		}
	}
}

// TestRolloutOnlyGrows raises a two-variant rollout from 0% to 100% one
// point at a time, listing the growing variant first or last: a key that
// is on at p% must still be on at every higher percentage.
func TestRolloutOnlyGrows(t *testing.T) {
	t.Parallel()
	for _, onFirst := range []bool{true, false} {
		const n = 20000
		was := make([]bool, n)
		for p := 0; p <= 100; p++ {
			sp := []flag.Split{{Variant: "on", Weight: float64(p)}, {Variant: "off", Weight: float64(100 - p)}}
			if !onFirst {
				sp[0], sp[1] = sp[1], sp[0]
			}
			s := flag.Spec{App: "shop", Environment: "prod", Key: "new-checkout", Type: flag.Boolean, Enabled: true,
				Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "off", Fractional: sp}
			e := mustCompile(t, s, nil)
			on := 0
			for i := 0; i < n; i++ {
				now := e.Evaluate(flag.Context{TargetingKey: "user-" + strconv.Itoa(i)}).Variant == "on"
				if was[i] && !now {
					t.Fatalf("onFirst=%v: user-%d was on at %d%% and is off at %d%%", onFirst, i, p-1, p)
				}
				was[i] = now
				if now {
					on++
				}
			}
			if p == 0 && on != 0 || p == 100 && on != n {
				t.Fatalf("onFirst=%v: %d of %d on at %d%%", onFirst, on, n, p)
			}
		}
	}
}

// TestBucketIndependentOfFlag checks two flags bucket a user independently:
// being in the first 10% of one says nothing about the other.
func TestBucketIndependentOfFlag(t *testing.T) {
	t.Parallel()
	const n = 200000
	both, first := 0, 0
	for i := 0; i < n; i++ {
		k := "user-" + strconv.Itoa(i)
		if flag.Bucket("flag-a", k) < flag.Units/10 {
			first++
			if flag.Bucket("flag-b", k) < flag.Units/10 {
				both++
			}
		}
	}
	if share := float64(both) / float64(first); share < 0.09 || share > 0.11 {
		t.Fatalf("of the users in flag-a's first 10%%, %.3f are in flag-b's: want about 0.10", share)
	}
}

// TestBucketReference recomputes buckets the way the documentation states
// them, with the standard library's FNV-1a and big-number arithmetic.
func TestBucketReference(t *testing.T) {
	t.Parallel()
	ref := func(key, tk string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(key + "/" + tk))
		x := h.Sum64()
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		x *= 0xc4ceb9fe1a85ec53
		x ^= x >> 33
		p := new(big.Int).Mul(new(big.Int).SetUint64(x), big.NewInt(flag.Units))
		return p.Rsh(p, 64).Uint64()
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10000; i++ {
		key, tk := strconv.FormatUint(rng.Uint64(), 36), strconv.FormatUint(rng.Uint64(), 16)
		if got, want := flag.Bucket(key, tk), ref(key, tk); got != want {
			t.Fatalf("Bucket(%q, %q) = %d, reference %d", key, tk, got, want)
		}
	}
}
