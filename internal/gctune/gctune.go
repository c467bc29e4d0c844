// Package gctune sets how often the garbage collector of an airlock
// process runs.
//
// airlock's live heap is small (a few MB for the store and the router) and
// every write allocates afresh (statements, their arguments, the audit
// entry), so with Go's default GOGC of 100 the collector runs every few
// tens of milliseconds under load: at 5,000 audit appends a second, every
// 45 ms (13.5 KB allocated per append, half of it by pgx encoding the
// statements). On a 2-core machine each run takes one core for 1-2 ms, and
// the requests queued meanwhile wait: bench/store on PostgreSQL showed a
// cluster of slow requests every 40-70 ms. A GOGC of 400 lets the heap grow
// to five times what is live before collecting, so the runs come a quarter
// as often, for a few MB more memory; in eight interleaved pairs it cut
// the requests over 5 ms by a third to two thirds in six.
package gctune

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
)

// Percent is the GOGC airlock processes run with unless the GOGC
// environment variable says otherwise.
const Percent = 400

// Apply sets the collector's target to Percent, unless GOGC is set in the
// environment, which the runtime has then applied already (GOMEMLIMIT is
// honoured either way). It returns the GOGC in effect.
func Apply() int {
	if os.Getenv("GOGC") != "" {
		m := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(m)
		return int(m[0].Value.Uint64())
	}
	debug.SetGCPercent(Percent)
	return Percent
}
