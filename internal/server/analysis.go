package server

import (
	"github.com/airlock-dev/airlock/internal/analysis"
	"github.com/airlock-dev/airlock/internal/runtime/local"
)

// analysisSource gives the canary analysis what the local runtime sees:
// the router's per-version counters, instance health and logs.
type analysisSource struct{ t *local.Target }

// NewAnalysisSource returns the analysis's view of the local runtime t.
func NewAnalysisSource(t *local.Target) analysis.Source { return analysisSource{t} }

func (s analysisSource) Counters(app, env, version string) (analysis.Counters, bool) {
	r := s.t.Router(app, env)
	if r == nil {
		return analysis.Counters{}, false
	}
	snap, ok := r.Snapshot(version)
	return analysis.Counters{Requests: snap.Requests, Errors: snap.Errors, LatencySum: snap.Latency.Sum, Buckets: snap.Latency.Counts}, ok
}

func (s analysisSource) Health(app, env, version string) (int, int) {
	return s.t.Health(app, env, version)
}

func (s analysisSource) Logs(app, env, version string, n int) ([]string, error) {
	return s.t.Logs(app, env, version, n)
}

func (s analysisSource) Address(app, env string) string { return s.t.Address(app, env) }
