// Package logs mines log templates with the Drain algorithm and compares the
// templates of a canary candidate with those of its baseline.
//
// A Miner turns raw lines into templates such as
// `payment declined: id=<*>`: each line is cut to Options.MaxLineBytes,
// its level and message are extracted (logfmt, JSON and plain text),
// variable spans (numbers, hex ids, UUIDs, IPs, durations, timestamps,
// quoted strings) are masked to `<*>`, and the masked tokens are routed
// through Drain's fixed-depth parse tree to the most similar template.
// Memory is bounded: at most Options.MaxClusters templates are kept and
// the least recently used one is evicted first.
//
// Compare reports templates at error level (or above) that appear only in
// the candidate, or whose rate rose by a configurable factor, with example
// lines, in a deterministic order.
//
// The package is pure: no I/O, no clock, no goroutines, no package-level
// mutable state. A *Miner is not safe for concurrent use; Compare only
// reads its miners. docs/analysis-logs.md describes the algorithm, the
// options, the guarantees and the measured figures.
package logs
