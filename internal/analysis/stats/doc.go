// Package stats holds the statistics the canary judge uses: the
// Mann–Whitney U test, a Kayenta-compatible metric classifier built on it,
// and a sequential test on error counts that stays valid however often it
// is checked.
//
// The package is pure: no I/O, no clock, no package-level mutable state.
// Functions are safe for concurrent use; a *ErrorRateTest is not.
// docs/analysis-stats.md gives the formulas and the reference figures.
package stats
