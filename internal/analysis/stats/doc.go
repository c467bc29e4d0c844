// Package stats holds the statistics the canary judge uses: the
// Mann–Whitney U test, a Kayenta-compatible metric classifier built on it,
// a sequential test on error counts that stays valid however often it is
// checked, and a variant of it robust to error bursts local to one
// version (RobustErrorTest).
//
// The package is pure: no I/O, no clock, no package-level mutable state.
// Functions are safe for concurrent use; a *ErrorRateTest or a
// *RobustErrorTest is not.
// docs/analysis-stats.md gives the formulas and the reference figures.
package stats
