//go:build race

package audit

// raceEnabled: the race detector drops a quarter of what goes back into a
// sync.Pool, so allocation counts mean nothing under it.
const raceEnabled = true
