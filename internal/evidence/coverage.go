package evidence

import "math"

// Coverage reports: Go coverprofiles (coverage_go.go), Cobertura XML
// (coverage_cobertura.go) and LCOV (coverage_lcov.go). All three end in a
// coverageTally, so the facts mean the same whatever the tool.

// coverageTally is what the coverage facts are computed from. For a Go
// coverprofile "lines" are statements.
type coverageTally struct {
	linesTotal, linesCovered       int64
	branchesKnown                  bool
	branchesTotal, branchesCovered int64
	branchRate                     float64 // used when only a rate is known (branchesTotal == 0)
	functionsKnown                 bool
	functionsTotal, functionsHit   int64
	files                          int
	// lineRateOnly: the report gave a line rate (0..1) and no counts.
	lineRateOnly bool
	lineRate     float64
}

func (c *coverageTally) report(format string) *Report {
	facts := map[string]any{
		"coverage.line_percent":  percent(c.linesCovered, c.linesTotal),
		"coverage.lines_total":   float64(c.linesTotal),
		"coverage.lines_covered": float64(c.linesCovered),
		"coverage.files":         float64(c.files),
	}
	if c.lineRateOnly {
		facts["coverage.line_percent"] = round2(c.lineRate * 100)
	}
	if c.branchesKnown {
		if c.branchesTotal > 0 {
			facts["coverage.branch_percent"] = percent(c.branchesCovered, c.branchesTotal)
		} else {
			facts["coverage.branch_percent"] = round2(c.branchRate * 100)
		}
	}
	if c.functionsKnown && c.functionsTotal > 0 {
		facts["coverage.function_percent"] = percent(c.functionsHit, c.functionsTotal)
	}
	return &Report{Type: Coverage, Format: format, Facts: facts}
}

// percent is covered/total as a percentage rounded to 2 decimals; nothing
// to cover is 0%, so an empty report never satisfies a coverage gate.
func percent(covered, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return round2(float64(covered) * 100 / float64(total))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
