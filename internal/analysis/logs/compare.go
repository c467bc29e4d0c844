package logs

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Defaults of CompareOptions.
const (
	DefaultFactor   = 3.0
	DefaultMinCount = 5
)

// CompareOptions configures Compare. The zero value reports templates at
// error level or above, new or at least DefaultFactor times more frequent,
// seen at least DefaultMinCount times in the candidate, with rates per
// 1,000 lines.
type CompareOptions struct {
	// MinLevel is the least level that counts; LevelUnknown (the zero
	// value) means LevelError.
	MinLevel Level
	// Factor is how many times the baseline rate the candidate rate must
	// reach; 0 means DefaultFactor. Values below 1 are treated as 1.
	Factor float64
	// MinCount is the least number of candidate lines at MinLevel for a
	// template to be reported, so one new line does not fire; 0 means
	// DefaultMinCount.
	MinCount int
	// BaselineRequests and CandidateRequests, when both are positive,
	// make rates per request instead of per 1,000 lines.
	BaselineRequests, CandidateRequests int
	// MaxExamples bounds the example lines of a finding; 0 means 3.
	MaxExamples int
}

// Kind says why a template was reported.
type Kind int

const (
	// New: the template has no line at MinLevel or above in the baseline.
	New Kind = iota + 1
	// Rose: its rate rose by at least Factor.
	Rose
)

// String returns "new" or "rose".
func (k Kind) String() string {
	switch k {
	case New:
		return "new"
	case Rose:
		return "rose"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Finding is one candidate template at MinLevel or above that is new or
// more frequent than in the baseline.
type Finding struct {
	Kind Kind
	// Template and TemplateID are the candidate's template.
	Template   string
	TemplateID int
	// Level is the highest level the candidate logged it at.
	Level Level
	// BaselineCount and CandidateCount count lines at MinLevel or above.
	// The baseline count sums every baseline template that matches.
	BaselineCount, CandidateCount int
	// BaselineRate and CandidateRate are per 1,000 lines, or per request
	// when PerRequest is true.
	BaselineRate, CandidateRate float64
	PerRequest                  bool
	// Ratio is CandidateRate / BaselineRate, +Inf for a new template.
	Ratio float64
	// Examples are candidate lines of the template.
	Examples []string
}

// String is a sentence a person can read in a verdict.
func (f Finding) String() string {
	unit := "per 1,000 lines"
	if f.PerRequest {
		unit = "per request"
	}
	if f.Kind == New {
		return fmt.Sprintf("new %s template `%s` %d times (%.3g %s), not in baseline", f.Level, f.Template, f.CandidateCount, f.CandidateRate, unit)
	}
	return fmt.Sprintf("%s template `%s` %d times (%.3g %s) vs %d (%.3g) in baseline, %.1fx", f.Level, f.Template, f.CandidateCount, f.CandidateRate, unit, f.BaselineCount, f.BaselineRate, f.Ratio)
}

// Compare reports the candidate's templates at MinLevel or above that the
// baseline lacks or that became at least Factor times more frequent, most
// significant first: new templates before risen ones, then by higher
// candidate rate, higher ratio, larger count, template text and id.
//
// A candidate template matches a baseline template of the same length
// when at each position their tokens are equal or one of them is `<*>`.
// Compare only reads the miners. A miner with no lines yields rates of 0:
// with an empty baseline every error template of the candidate is new,
// and an empty candidate yields no findings; a judge must treat missing
// data as inconclusive itself (see Miner.Lines). A nil miner counts as
// an empty one.
func Compare(baseline, candidate *Miner, opts CompareOptions) []Finding {
	if candidate == nil {
		return nil
	}
	if baseline == nil {
		baseline, _ = NewMiner(Options{})
	}
	o := opts.withDefaults()
	perRequest := o.BaselineRequests > 0 && o.CandidateRequests > 0
	rate := func(count, lines, requests int) float64 {
		if perRequest {
			return float64(count) / float64(requests)
		}
		if lines == 0 {
			return 0
		}
		return float64(count) * 1000 / float64(lines)
	}
	byLen := map[int][]*cluster{}
	for e := baseline.lru.Front(); e != nil; e = e.Next() {
		c := e.Value.(*cluster)
		byLen[len(c.tokens)] = append(byLen[len(c.tokens)], c)
	}
	var out []Finding
	for e := candidate.lru.Front(); e != nil; e = e.Next() {
		c := e.Value.(*cluster)
		cn := countAtLeast(c.levels, o.MinLevel)
		if cn < o.MinCount {
			continue
		}
		bn := 0
		for _, b := range byLen[len(c.tokens)] {
			if compatible(b.tokens, c.tokens) {
				bn += countAtLeast(b.levels, o.MinLevel)
			}
		}
		f := Finding{
			Template:       strings.Join(c.tokens, " "),
			TemplateID:     c.id,
			Level:          c.level,
			BaselineCount:  bn,
			CandidateCount: cn,
			BaselineRate:   rate(bn, baseline.lines, o.BaselineRequests),
			CandidateRate:  rate(cn, candidate.lines, o.CandidateRequests),
			PerRequest:     perRequest,
		}
		switch {
		case bn == 0:
			f.Kind, f.Ratio = New, math.Inf(1)
		case f.CandidateRate >= o.Factor*f.BaselineRate:
			f.Kind, f.Ratio = Rose, f.CandidateRate/f.BaselineRate
		default:
			continue
		}
		f.Examples = slices.Clone(c.examples[:min(len(c.examples), o.MaxExamples)])
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(b.CandidateRate, a.CandidateRate),
			cmp.Compare(b.Ratio, a.Ratio),
			cmp.Compare(b.CandidateCount, a.CandidateCount),
			strings.Compare(a.Template, b.Template),
			cmp.Compare(a.TemplateID, b.TemplateID),
		)
	})
	return out
}

// CompareLines mines both sets of lines with the same options and compares
// them. It fails only when the miner options are invalid.
func CompareLines(baseline, candidate []string, mopts Options, copts CompareOptions) ([]Finding, error) {
	b, err := NewMiner(mopts)
	if err != nil {
		return nil, err
	}
	c, _ := NewMiner(mopts)
	for _, l := range baseline {
		b.Add(l)
	}
	for _, l := range candidate {
		c.Add(l)
	}
	return Compare(b, c, copts), nil
}

func (o CompareOptions) withDefaults() CompareOptions {
	if o.MinLevel <= LevelUnknown {
		o.MinLevel = LevelError
	}
	if o.Factor == 0 || math.IsNaN(o.Factor) {
		o.Factor = DefaultFactor
	}
	o.Factor = max(o.Factor, 1)
	if o.MinCount <= 0 {
		o.MinCount = DefaultMinCount
	}
	if o.MaxExamples <= 0 {
		o.MaxExamples = DefaultMaxExamples
	}
	return o
}

func countAtLeast(levels [numLevels]int, l Level) int {
	n := 0
	for i := max(l, 0); i < numLevels; i++ {
		n += levels[i]
	}
	return n
}

// compatible reports whether two templates of the same length agree at
// every position, `<*>` matching anything.
func compatible(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] && a[i] != Param && b[i] != Param {
			return false
		}
	}
	return true
}
