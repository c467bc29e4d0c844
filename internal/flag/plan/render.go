package plan

import (
	"fmt"
	"math"
	"slices"

	"github.com/airlock-dev/airlock/internal/flag"
)

// Render returns the flag spec f serving step (0-based) of plan p. It
// performs no I/O and does not modify f.
//
// The result is enabled. Its first targeting rule, RuleName, serves
// p.Variant to every segment of the segment steps up to and including step
// (the flag's own rules stay, after it; an older RuleName rule is
// replaced). The plan owns the flag's top-level split: from the first
// percent step on it is [{Variant, P}, {DefaultVariant, 100-P}] for the
// latest percent step's P, listing the variant first so that raising P only
// adds targeting keys (the keys in the first P% of buckets); before it there
// is no split, so only the segments get the variant.
//
// It refuses a step out of range, a variant the flag lacks, and a variant
// that is the flag's default (releasing it would change nothing), and
// checks the result with flag.Validate.
func Render(p Spec, step int, f flag.Spec) (flag.Spec, error) {
	if step < 0 || step >= len(p.Steps) {
		return flag.Spec{}, fmt.Errorf("plan has steps 0 to %d, not step %d", len(p.Steps)-1, step)
	}
	if _, ok := f.Variants[p.Variant]; !ok {
		return flag.Spec{}, fmt.Errorf("flag %s has no variant %q", flag.Name(f.App, f.Key, f.Environment), p.Variant)
	}
	if p.Variant == f.DefaultVariant {
		return flag.Spec{}, fmt.Errorf("variant %q is flag %s's default variant: a plan releases another variant (make the default the old behaviour, e.g. off)", p.Variant, flag.Name(f.App, f.Key, f.Environment))
	}
	var segments []string
	percent := 0.0
	for _, st := range p.Steps[:step+1] {
		for _, g := range st.Segments {
			if !slices.Contains(segments, g) {
				segments = append(segments, g)
			}
		}
		if st.Percent > 0 {
			percent = st.Percent
		}
	}
	out := f
	out.Enabled = true
	out.Targeting = make([]flag.Rule, 0, len(f.Targeting)+1)
	if len(segments) > 0 {
		conds := make([]flag.Condition, len(segments))
		for i, g := range segments {
			conds[i] = flag.Condition{Segment: g}
		}
		out.Targeting = append(out.Targeting, flag.Rule{Name: RuleName, When: &flag.Condition{Any: conds}, Variant: p.Variant})
	}
	for _, r := range f.Targeting {
		if r.Name != RuleName {
			out.Targeting = append(out.Targeting, r)
		}
	}
	if len(out.Targeting) == 0 {
		out.Targeting = nil
	}
	out.Fractional = nil
	if percent > 0 {
		units := int64(math.Round(percent * flag.Units / 100))
		out.Fractional = []flag.Split{
			{Variant: p.Variant, Weight: float64(units) / (flag.Units / 100)},
			{Variant: f.DefaultVariant, Weight: float64(flag.Units-units) / (flag.Units / 100)},
		}
	}
	if err := flag.Validate(out); err != nil {
		return flag.Spec{}, fmt.Errorf("step %d of the plan makes an invalid flag: %w", step, err)
	}
	return out, nil
}
