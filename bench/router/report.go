package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
)

// report prints the table of figures against the targets of issue 5.
func (h *harness) report() {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%d CPUs, %s, %s\t\t\n", runtime.NumCPU(), sysinfo.CPUModel(), runtime.Version())
	fmt.Fprintf(tw, "load average at start / end\t%s / %s\t\t\n", h.loadStart, sysinfo.LoadAvg())
	if h.stalls.CPUs > 0 {
		fmt.Fprintf(tw, "before the run\t%s\t\t\n", h.stalls)
	}
	if h.nginxConf != "" {
		fmt.Fprintf(tw, "nginx\t%s\t\t\n", h.nginxConf)
	}
	fmt.Fprintf(tw, "measure\tfigure\ttarget\tmet\n")
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	if d, r := h.latency["direct"], h.latency["router"]; len(d) > 0 && len(d) == len(r) {
		var add50, add99 time.Duration
		for i := range d {
			add50 += quantile(r[i].sched, .5) - quantile(d[i].sched, .5)
			add99 += quantile(r[i].sched, .99) - quantile(d[i].sched, .99)
		}
		add50 /= time.Duration(len(d))
		add99 /= time.Duration(len(d))
		var svc50, svc99, base99 time.Duration
		for i := range d {
			svc50 += quantile(r[i].service, .5) - quantile(d[i].service, .5)
			svc99 += quantile(r[i].service, .99) - quantile(d[i].service, .99)
			base99 = max(base99, quantile(d[i].sched, .99))
		}
		svc50 /= time.Duration(len(d))
		svc99 /= time.Duration(len(d))
		for i := range d {
			fmt.Fprintf(tw, "latency run %d at %d req/s: direct p50/p99 (service p50/p99)\t%s / %s (%s / %s), errors %d\t\t\n", i+1, h.rate,
				ms(quantile(d[i].sched, .5)), ms(quantile(d[i].sched, .99)), ms(quantile(d[i].service, .5)), ms(quantile(d[i].service, .99)), d[i].errors)
			fmt.Fprintf(tw, "latency run %d at %d req/s: router p50/p99 (service p50/p99)\t%s / %s (%s / %s), errors %d\t\t\n", i+1, h.rate,
				ms(quantile(r[i].sched, .5)), ms(quantile(r[i].sched, .99)), ms(quantile(r[i].service, .5)), ms(quantile(r[i].service, .99)), r[i].errors)
		}
		// When the direct baseline's own tail is far above the target, the
		// machine is busy with other work and a difference of tails says
		// nothing about the router.
		verdict := func(ok bool) string {
			if base99 > 2*time.Millisecond {
				return fmt.Sprintf("inconclusive (direct p99 %s: machine busy)", ms(base99))
			}
			return yes(ok)
		}
		if n := h.latency["nginx"]; len(n) == len(d) {
			var n50, n99 time.Duration
			for i := range d {
				fmt.Fprintf(tw, "latency run %d at %d req/s: nginx p50/p99 (service p50/p99)\t%s / %s (%s / %s), errors %d\t\t\n", i+1, h.rate,
					ms(quantile(n[i].sched, .5)), ms(quantile(n[i].sched, .99)), ms(quantile(n[i].service, .5)), ms(quantile(n[i].service, .99)), n[i].errors)
				n50 += quantile(n[i].sched, .5) - quantile(d[i].sched, .5)
				n99 += quantile(n[i].sched, .99) - quantile(d[i].sched, .99)
			}
			fmt.Fprintf(tw, "for reference: nginx added latency p50 / p99 (mean of runs)\t%s / %s\t\t\n", ms(n50/time.Duration(len(d))), ms(n99/time.Duration(len(d))))
		}
		fmt.Fprintf(tw, "added latency p50 (router - direct, mean of runs; service time)\t%s (%s)\t<= 100µs\t%s\n", ms(add50), ms(svc50), yes(add50 <= 100*time.Microsecond))
		fmt.Fprintf(tw, "added latency p99 (router - direct, mean of runs; service time)\t%s (%s)\t<= 500µs\t%s\n", ms(add99), ms(svc99), verdict(add99 <= 500*time.Microsecond))
	}
	if r, ok := h.tput["router"]; ok {
		fmt.Fprintf(tw, "max throughput, Go load generator, %d conns: router\t%.0f req/s (errors %d, %s CPU/request)\t\t\n", h.conns, r.rps, r.errs, us(r.cpuPerReq))
		if n, ok := h.tput["nginx"]; ok {
			ratio := r.rps / n.rps
			fmt.Fprintf(tw, "max throughput, Go load generator, %d conns: nginx\t%.0f req/s (errors %d, %s CPU/request)\t\t\n", h.conns, n.rps, n.errs, us(n.cpuPerReq))
			fmt.Fprintf(tw, "router / nginx (Go load generator)\t%.2f\t>= 0.85\t%s\n", ratio, yes(ratio >= 0.85))
		}
	}
	if r, ok := h.wrk["router"]; ok {
		fmt.Fprintf(tw, "max throughput, wrk -t2 -c%d: router\t%.0f req/s (errors %d, %s CPU/request)\t\t\n", h.conns, r.rps, r.errs, us(r.cpuPerReq))
		if n, ok := h.wrk["nginx"]; ok {
			ratio := r.rps / n.rps
			fmt.Fprintf(tw, "max throughput, wrk -t2 -c%d: nginx\t%.0f req/s (errors %d, %s CPU/request)\t\t\n", h.conns, n.rps, n.errs, us(n.cpuPerReq))
			fmt.Fprintf(tw, "router / nginx (wrk)\t%.2f\t>= 0.85\t%s\n", ratio, yes(ratio >= 0.85))
		}
	}
	if f := h.flipRes; f != nil {
		fmt.Fprintf(tw, "weights changed every %s for %s (%s)\t%d requests, %d failed\t0 failed\t%s\n", h.flip, h.duration, h.flipInfo, f.n, f.errors, yes(f.errors == 0 && f.n > 0))
	}
	if s := h.splitRes; s != nil {
		ok := s.errors == 0
		var parts []string
		worst := 0.0
		for i, v := range versions {
			share := 100 * float64(s.byVersion[v]) / float64(max(1, s.n-s.errors))
			dev := math.Abs(share - float64(h.weights[i]))
			worst = max(worst, dev)
			parts = append(parts, fmt.Sprintf("%s %.3f%% (weight %d%%)", v, share, h.weights[i]))
		}
		ok = ok && worst <= 1
		fmt.Fprintf(tw, "split over %d requests\t%s, max deviation %.3f points, errors %d\t±1 point\t%s\n", s.n, strings.Join(parts, ", "), worst, s.errors, yes(ok))
	}
	tw.Flush()
}
