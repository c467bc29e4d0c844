// Package signals fetches the external signals the canary judge weighs:
// PromQL queries against a Prometheus HTTP API and synthetic HTTP probes
// against the candidate.
//
// Every failure to obtain a signal — a timeout, an HTTP or API error, a
// malformed response, a NaN sample, an empty result, a template that does
// not render, a probe host that does not resolve — is returned as an
// *Error with a Kind. None of them is ever a pass, and none panics. A
// Tracker counts consecutive errors and reports Inconclusive once they
// reach a limit (3 by default).
//
// The package holds no package-level mutable state. A *Client, a *Probe
// and a *Tracker are safe for concurrent use; a *Monitor runs one probe on
// a schedule and is safe to read while it runs. docs/analysis-signals.md
// describes the configuration fields and the error semantics.
package signals
