// Command judge measures how well four canary judges tell a healthy
// candidate from a regressed one, on generated traffic in simulated time.
//
//	go run ./bench/judge [-runs 1000] [-seed 1] [-duration 10m] [-json]
//
// Each run is one canary: the candidate and the baseline each serve -rate
// requests a second (default 50) for -duration of simulated time (no
// sleeping), and four judges watch it:
//
//  1. the fixed rule of the seeds' table: roll back when, over the last 5
//     minutes, the candidate's error rate is above the baseline's + 5
//     points, or its p99 latency above the baseline's + 100%; checked every
//     second once 5 minutes have passed;
//  2. Kayenta-style: at the end of each -interval (5 minutes), the
//     repository's Mann–Whitney classifier (stats.Classify, 98%, band 0.25)
//     on the interval's latencies and per-second error rates, a 0–100
//     score, and a rollback below the pass threshold;
//  3. sequential: the repository's mSPRT on error counts
//     (stats.ErrorRateTest), updated every second, and for latency the
//     same end-of-interval classification (the package has no sequential
//     test for latency);
//  4. robust sequential: stats.RobustErrorTest on error counts (evidence
//     bounded per 1-second block, so that bursts local to one version
//     are not taken for regressions), updated every second, and the same
//     latency classification.
//
// Healthy scenarios measure the false rollback rate (every run watched for
// its whole length); regressions measure the detection rate and the time
// to detect. Runs are spread over -workers goroutines; every run draws
// from its own PCG stream (seed, scenario, run), so the figures do not
// depend on scheduling.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/stats"
)

func main() {
	runs := flag.Int("runs", 1000, "runs per scenario")
	seed := flag.Uint64("seed", 1, "random seed; the same seed gives the same figures")
	duration := flag.Duration("duration", 10*time.Minute, "simulated length of each run")
	rate := flag.Int("rate", 50, "requests per second per version")
	interval := flag.Duration("interval", 5*time.Minute, "Kayenta's analysis interval, and the fixed rule's window")
	sampleEvery := flag.Int("sample-every", 8, "Mann-Whitney compares every n-th request's latency (1: all; 8 keeps 1,875 of 15,000 per version per 5 min)")
	band := flag.String("band", "baseline", "classifier band: baseline (tolerance x baseline median) or estimate (Kayenta's tolerance x shift)")
	confidence := flag.Float64("confidence", stats.DefaultConfidence, "classifier confidence")
	tolerance := flag.Float64("tolerance", stats.DefaultTolerance, "classifier tolerance")
	alpha := flag.Float64("alpha", stats.DefaultAlpha, "mSPRT false rejection bound")
	robustBlock := flag.Duration("robust-block", stats.DefaultRobustBlock, "robust judge: block length (each block adds at most about half a nat of evidence)")
	robustAlpha := flag.Float64("robust-alpha", stats.DefaultRobustAlpha, "robust judge: false rejection bound of its error test when the versions' errors are exchangeable")
	robustPrior := flag.Float64("robust-prior", stats.DefaultRobustPrior, "robust judge: precision of the mixture over the betting rate, in errors^2")
	pass := flag.Float64("pass", 95, "Kayenta pass threshold (0-100)")
	burstRate := flag.Float64("burst-error-rate", DefaultBursts.BadRate, "error rate inside a burst (bursty scenarios; the average stays 1%)")
	burstSec := flag.Float64("burst-seconds", DefaultBursts.MeanBadSec, "mean length of a burst in seconds")
	only := flag.String("scenarios", "", "comma-separated substrings: run only the scenarios whose name contains one")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "goroutines running simulations")
	jsonOut := flag.Bool("json", false, "print the report as JSON instead of a table")
	flag.Parse()

	c := config{
		rate:        *rate,
		bursts:      Bursts{BadRate: *burstRate, MeanBadSec: *burstSec},
		duration:    int(duration.Seconds()),
		interval:    int(interval.Seconds()),
		sampleEvery: *sampleEvery,
		classifier:  stats.ClassifierConfig{Confidence: *confidence, Tolerance: *tolerance, Direction: stats.Increase},
		alpha:       *alpha,
		robust:      stats.RobustConfig{Alpha: *robustAlpha, Block: *robustBlock, Prior: *robustPrior},
		pass:        *pass,
		errWeight:   50,
		latWeight:   50,
		errPoints:   0.05,
		latIncrease: 1,
	}
	switch *band {
	case "baseline":
		c.classifier.Band = stats.BandBaseline
	case "estimate":
		c.classifier.Band = stats.BandEstimate
	default:
		log.Fatalf("-band %q: want baseline or estimate", *band)
	}
	if *runs < 1 || c.rate < 1 || c.duration < 1 || c.interval < 1 || c.sampleEvery < 1 || *workers < 1 {
		log.Fatal("-runs, -rate, -duration, -interval, -sample-every and -workers must be positive")
	}

	if err := c.bursts.validate(); err != nil {
		log.Fatal(err)
	}
	var scs []Scenario
	for i, sc := range scenarios() {
		sc.id = i
		if *only == "" || matchesAny(sc.Name, *only) {
			scs = append(scs, sc)
		}
	}
	if len(scs) == 0 {
		log.Fatalf("-scenarios %q matches no scenario", *only)
	}

	start := time.Now()
	results, err := simulate(c, scs, *runs, *seed, *workers)
	if err != nil {
		log.Fatal(err)
	}
	rep := newReport(c, scs, results, *runs)
	rep.Command = strings.TrimSpace("go run ./bench/judge " + shellJoin(os.Args[1:]))
	rep.Seed = *seed
	rep.Band = *band
	rep.Bursts = c.bursts
	rep.Workers = *workers
	rep.Machine = fmt.Sprintf("%d CPUs, %s %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	rep.Elapsed = time.Since(start).Round(100 * time.Millisecond).String()
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			log.Fatal(err)
		}
		return
	}
	rep.print(os.Stdout)
}

// shellJoin quotes the arguments that a POSIX shell would split or expand,
// so the printed command can be pasted back.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+%@", r))
		}) {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

func matchesAny(name, list string) bool {
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// simulate runs every scenario runs times over workers goroutines and
// returns the outcomes by scenario and run. Run i of a scenario draws from
// the PCG stream (seed, id<<32 | i), id the scenario's place in
// scenarios(), whatever goroutine runs it and whichever scenarios run.
func simulate(c config, scs []Scenario, runs int, seed uint64, workers int) ([][]outcome, error) {
	out := make([][]outcome, len(scs))
	for k := range out {
		out[k] = make([]outcome, runs)
	}
	total := int64(len(scs) * runs)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := newWorkspace(c)
			for {
				job := next.Add(1) - 1
				if job >= total {
					return
				}
				k, i := int(job)/runs, int(job)%runs
				stream := uint64(scs[k].id)<<32 | uint64(i)
				o, err := runOne(c, scs[k], seed, stream, ws)
				if err != nil {
					errs[w] = fmt.Errorf("%s, run %d: %w", scs[k].Name, i, err)
					next.Store(total)
					return
				}
				out[k][i] = o
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
