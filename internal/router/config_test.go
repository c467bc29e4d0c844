package router

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	two := func(w1, w2 int) []Pool {
		return []Pool{
			{Version: "1.0.0", Weight: w1, Instances: []string{"127.0.0.1:8001", "127.0.0.1:8002"}},
			{Version: "1.1.0", Weight: w2, Instances: []string{"127.0.0.1:8003"}},
		}
	}
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; empty means valid
	}{
		{name: "empty config", cfg: Config{}},
		{name: "one pool at 100", cfg: Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{"localhost:80"}}}}},
		{name: "split 95/5", cfg: Config{Pools: two(95, 5)}},
		{name: "candidate at 0", cfg: Config{Pools: two(100, 0)}},
		{name: "pools without instances need no weights", cfg: Config{Pools: []Pool{{Version: "1.0.0"}, {Version: "2.0.0"}}}},
		{name: "weights short of 100", cfg: Config{Pools: two(90, 5)}, want: "pools: weights sum to 95; they must sum to 100"},
		{name: "weights over 100", cfg: Config{Pools: two(90, 20)}, want: "weights sum to 110"},
		{name: "negative weight", cfg: Config{Pools: two(101, -1)}, want: "pools[1].weight: -1 is outside 0..100"},
		{name: "weight above 100", cfg: Config{Pools: two(101, -1)}, want: "pools[0].weight: 101 is outside 0..100"},
		{name: "empty version", cfg: Config{Pools: []Pool{{Weight: 100, Instances: []string{"a:1"}}}}, want: "pools[0].version: must not be empty"},
		{name: "version with a space", cfg: Config{Pools: []Pool{{Version: "1 0", Weight: 100, Instances: []string{"a:1"}}}}, want: `pools[0].version: "1 0" may hold only`},
		{name: "duplicate version", cfg: Config{Pools: []Pool{
			{Version: "1.0.0", Weight: 50, Instances: []string{"a:1"}},
			{Version: "1.0.0", Weight: 50, Instances: []string{"a:2"}},
		}}, want: `pools[1].version: "1.0.0" is already the version of pools[0]`},
		{name: "address without port", cfg: Config{Pools: []Pool{{Version: "v", Weight: 100, Instances: []string{"localhost"}}}}, want: `pools[0].instances[0]: "localhost" is not host:port`},
		{name: "port out of range", cfg: Config{Pools: []Pool{{Version: "v", Weight: 100, Instances: []string{"localhost:70000"}}}}, want: "outside 1..65535"},
		{name: "port not a number", cfg: Config{Pools: []Pool{{Version: "v", Weight: 100, Instances: []string{"localhost:http"}}}}, want: `port "http"`},
		{name: "url instead of address", cfg: Config{Pools: []Pool{{Version: "v", Weight: 100, Instances: []string{"http://a:1"}}}}, want: "pools[0].instances[0]"},
		{name: "duplicate instance", cfg: Config{Pools: []Pool{{Version: "v", Weight: 100, Instances: []string{"a:1", "a:1"}}}}, want: `pools[0].instances[1]: "a:1" repeats instances[0]`},
		{name: "weight without instances", cfg: Config{Pools: []Pool{
			{Version: "1", Weight: 50, Instances: []string{"a:1"}},
			{Version: "2", Weight: 50},
		}}, want: `pools[1].instances: version "2" has weight 50 but no instance`},
		{name: "cookie sticky default name", cfg: Config{Pools: two(50, 50), Sticky: Sticky{Mode: StickyCookie}}},
		{name: "header sticky", cfg: Config{Pools: two(50, 50), Sticky: Sticky{Mode: StickyHeader, Name: "X-User"}}},
		{name: "header sticky without name", cfg: Config{Pools: two(50, 50), Sticky: Sticky{Mode: StickyHeader}}, want: "sticky.name: the header to hash is required"},
		{name: "unknown sticky mode", cfg: Config{Pools: two(50, 50), Sticky: Sticky{Mode: "ip"}}, want: `sticky.mode: "ip" is not one of none, cookie, header`},
		{name: "bad cookie name", cfg: Config{Sticky: Sticky{Mode: StickyCookie, Name: "a;b"}}, want: `sticky.name: "a;b" is not a valid cookie name`},
		{name: "name without mode", cfg: Config{Sticky: Sticky{Name: "x"}}, want: "sticky.name: set to \"x\" but sticky.mode is none"},
		{name: "override disabled", cfg: Config{OverrideHeader: "-"}},
		{name: "bad override header", cfg: Config{OverrideHeader: "X Version"}, want: `overrideHeader: "X Version" is not a valid header name`},
		{name: "health path without slash", cfg: Config{HealthCheck: HealthCheck{Path: "healthz"}}, want: `healthCheck.path: "healthz" must start with /`},
		{name: "health timeout above interval", cfg: Config{HealthCheck: HealthCheck{Path: "/h", Interval: time.Second, Timeout: 2 * time.Second}}, want: "healthCheck.timeout: 2s is longer than healthCheck.interval 1s"},
		{name: "negative interval", cfg: Config{HealthCheck: HealthCheck{Path: "/h", Interval: -time.Second}}, want: "healthCheck.interval: -1s must be positive"},
		{name: "negative threshold", cfg: Config{HealthCheck: HealthCheck{UnhealthyThreshold: -1}}, want: "healthCheck.unhealthyThreshold: -1 must be at least 1"},
		{name: "ejection max below base", cfg: Config{Ejection: Ejection{BaseDuration: time.Minute, MaxDuration: time.Second}}, want: "ejection.maxDuration: 1s is shorter than ejection.baseDuration 1m0s"},
		{name: "negative failures", cfg: Config{Ejection: Ejection{ConsecutiveFailures: -2}}, want: "ejection.consecutiveFailures: -2 must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestUpdateRejectsInvalidConfigAndKeepsTheOld(t *testing.T) {
	t.Parallel()
	r := New(Options{})
	defer r.Close()
	good := Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{"127.0.0.1:9"}}}}
	if err := r.Update(good); err != nil {
		t.Fatal(err)
	}
	err := r.Update(Config{Pools: []Pool{{Version: "2.0.0", Weight: 60, Instances: []string{"127.0.0.1:9"}}}})
	if err == nil || !strings.Contains(err.Error(), "weights sum to 60") {
		t.Fatalf("Update(bad) = %v, want the weight error", err)
	}
	if got := r.Config().Pools[0].Version; got != "1.0.0" {
		t.Fatalf("config in force has version %q, want 1.0.0", got)
	}
}

func TestSmoothSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		weights []int
		period  int
	}{
		{[]int{100}, 1},
		{[]int{50, 50}, 2},
		{[]int{95, 5}, 20},
		{[]int{73, 27}, 100},
		{[]int{33, 33, 34}, 100},
		{[]int{0, 100}, 1},
	}
	for _, tt := range tests {
		var pools []*pool
		for i, w := range tt.weights {
			pools = append(pools, &pool{version: string(rune('a' + i)), weight: w})
		}
		s := smoothSchedule(pools)
		if len(s) != tt.period {
			t.Errorf("weights %v: period %d, want %d", tt.weights, len(s), tt.period)
		}
		count := map[*pool]int{}
		for _, p := range s {
			count[p]++
		}
		for _, p := range pools {
			if want := p.weight * len(s) / 100; count[p] != want {
				t.Errorf("weights %v: pool %s appears %d times per period, want %d", tt.weights, p.version, count[p], want)
			}
		}
	}
}
