package stats

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// referenceCase is one row of testdata/reference.json, written by
// testdata/gen_reference.py from scipy.stats.mannwhitneyu.
type referenceCase struct {
	Name        string    `json:"name"`
	X           []float64 `json:"x"`
	Y           []float64 `json:"y"`
	Method      string    `json:"method"`
	Alternative string    `json:"alternative"`
	U           float64   `json:"u"`
	P           float64   `json:"p"`
}

// relClose reports whether got is within tol of want, relative to |want|;
// when want is 0 it must be exactly 0.
func relClose(got, want, tol float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

func TestMannWhitneyMatchesSciPy(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		SciPy string          `json:"scipy"`
		Cases []referenceCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 90 {
		t.Fatalf("reference.json holds %d cases, want at least 90", len(ref.Cases))
	}
	alternatives := map[string]Alternative{"two-sided": TwoSided, "greater": Greater, "less": Less}
	methods := map[string]Method{"asymptotic": Asymptotic, "exact": Exact}
	const tol = 1e-9
	var worst float64
	for _, c := range ref.Cases {
		alt, ok := alternatives[c.Alternative]
		if !ok {
			t.Fatalf("%s: unknown alternative %q", c.Name, c.Alternative)
		}
		m, ok := methods[c.Method]
		if !ok {
			t.Fatalf("%s: unknown method %q", c.Name, c.Method)
		}
		got, err := MannWhitney(c.X, c.Y, MannWhitneyOptions{Alternative: alt, Method: m})
		if err != nil {
			t.Errorf("%s %s %s: %v", c.Name, c.Method, c.Alternative, err)
			continue
		}
		if !relClose(got.U1, c.U, tol) {
			t.Errorf("%s %s %s: U = %.17g, scipy %s says %.17g", c.Name, c.Method, c.Alternative, got.U1, ref.SciPy, c.U)
		}
		if c.P != 0 {
			worst = math.Max(worst, math.Abs(got.P-c.P)/c.P)
		}
		if !relClose(got.P, c.P, tol) {
			t.Errorf("%s %s %s: p = %.17g, scipy %s says %.17g", c.Name, c.Method, c.Alternative, got.P, ref.SciPy, c.P)
		}
		if got.Exact != (m == Exact) {
			t.Errorf("%s: Exact = %t, want %t", c.Name, got.Exact, m == Exact)
		}
	}
	t.Logf("%d cases; largest relative p-value difference from scipy: %.3g", len(ref.Cases), worst)
}
