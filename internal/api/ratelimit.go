package api

import (
	"math"
	"sync"
	"time"
)

// DefaultOFREPRate is how many OFREP requests per second one evaluation
// key may make on average (bursts of twice that pass).
const DefaultOFREPRate = 1000

// keyLimiter is a token bucket per key: rate tokens a second, up to burst.
type keyLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newKeyLimiter(rate float64, now func() time.Time) *keyLimiter {
	return &keyLimiter{rate: rate, burst: 2 * rate, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key, or says how long until one is there.
func (l *keyLimiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) > 100_000 { // forget idle keys rather than grow
			for k, old := range l.buckets {
				if now.Sub(old.at) > time.Minute {
					delete(l.buckets, k)
				}
			}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}
