package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// report is everything one run measured; -json prints it as it is.
type report struct {
	Machine     string   `json:"machine"`
	LoadStart   string   `json:"loadAverageStart"`
	LoadEnd     string   `json:"loadAverageEnd"`
	Duration    string   `json:"duration"`
	Connections int      `json:"connections"`
	Rate        int      `json:"rate"`
	Keys        int      `json:"airlockEvaluationKeys"`
	Flagd       string   `json:"flagd"` // its version, or why it was not measured
	Results     []result `json:"results"`
	// Ratios are airlock / flagd, per mode, when both ran.
	ThroughputRatio *float64 `json:"throughputRatio,omitempty"` // closed loop req/s
	Targets         []check  `json:"targets"`
}

const floorName = "net/http floor"

// check is one of the targets.
type check struct {
	Target string `json:"target"`
	Figure string `json:"figure"`
	Met    string `json:"met"` // yes, NO, or not measured
}

func (r *report) find(server, mode string) *result {
	for i := range r.Results {
		if r.Results[i].Server == server && r.Results[i].Mode == mode {
			return &r.Results[i]
		}
	}
	return nil
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// finish computes the ratio and the verdicts.
func (r *report) finish() *report {
	a, f := r.find("airlock", "closed"), r.find("flagd", "closed")
	switch {
	case a != nil && f != nil && f.Rate > 0:
		ratio := a.Rate / f.Rate
		r.ThroughputRatio = &ratio
		r.Targets = append(r.Targets, check{"throughput airlock / flagd >= 1.5 (closed loop)", fmt.Sprintf("%.2f", ratio), yes(ratio >= 1.5 && a.Errors == 0)})
	case a != nil:
		r.Targets = append(r.Targets, check{"throughput airlock / flagd >= 1.5 (closed loop)", fmt.Sprintf("airlock %.0f req/s; flagd %s", a.Rate, r.Flagd), "not measured"})
	}
	if o := r.find("airlock", "open"); o != nil {
		fig := fmt.Sprintf("p99 %.0fµs at %d req/s offered (achieved %.0f, errors %d)", o.P99, o.Offered, o.Rate, o.Errors)
		met := yes(o.P99 < 1000 && o.Errors == 0 && o.Offered >= 5000 && o.Rate >= 0.99*float64(o.Offered))
		// When a server that does nothing misses the bound too, the
		// machine is busy with other work and the figure says little
		// about airlock.
		if fl := r.find(floorName, "open"); fl != nil && met == "NO" && fl.P99 >= 1000 {
			met = fmt.Sprintf("NO, inconclusive (net/http floor p99 %.0fµs: machine busy)", fl.P99)
		}
		r.Targets = append(r.Targets, check{"airlock p99 < 1 ms at 5,000 req/s (open loop)", fig, met})
	}
	return r
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "machine: %s; load average %s at start, %s at end\n", r.Machine, r.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "100 flags (50 static, 30 staff rule + 25%% split, 20 string with a segment rule); load generator in this process\n")
	fmt.Fprintf(w, "airlock: per-key OFREP limit 1,000/s (burst 2,000), the default: requests rotate over %d evaluation keys\n", r.Keys)
	fmt.Fprintf(w, "flagd: %s\n", r.Flagd)
	if r.find(floorName, "closed") != nil || r.find(floorName, "open") != nil {
		fmt.Fprintf(w, "%s: a minimal Go net/http server answering a fixed result, the machine's own loopback HTTP cost\n", floorName)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "server\tmode\treq/s\tp50\tp99\tp99.9\tmax\terrors\t429s\tserver CPU/req\tload gen CPU/req\t\n")
	for _, x := range r.Results {
		mode := fmt.Sprintf("closed, %d conns", x.Conns)
		if x.Mode == "open" {
			mode = fmt.Sprintf("open, %d/s offered", x.Offered)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%.1fµs\t%.1fµs\t\n", x.Server, mode, x.Rate,
			dur(x.P50), dur(x.P99), dur(x.P999), dur(x.Max), x.Errors, x.Limited, x.ServerCPU, x.ClientCPU)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if a, fl := r.find("airlock", "closed"), r.find(floorName, "closed"); a != nil && fl != nil && fl.Rate > 0 {
		fmt.Fprintf(w, "airlock / %s throughput (closed loop): %.2f\n", floorName, a.Rate/fl.Rate)
	}
	if r.ThroughputRatio != nil {
		fmt.Fprintf(w, "airlock / flagd throughput (closed loop): %.2f\n", *r.ThroughputRatio)
		if a, f := r.find("airlock", "closed"), r.find("flagd", "closed"); a.ServerCPU > 0 && f.ServerCPU > 0 {
			// Less affected by other work on the machine than req/s.
			fmt.Fprintf(w, "flagd / airlock server CPU per request (closed loop): %.2f\n", f.ServerCPU/a.ServerCPU)
		}
		if a, f := r.find("airlock", "open"), r.find("flagd", "open"); a != nil && f != nil && f.P99 > 0 {
			fmt.Fprintf(w, "airlock / flagd p99 (open loop): %.2f\n", a.P99/f.P99)
		}
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target\tfigure\tmet\n")
	for _, c := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Target, c.Figure, c.Met)
	}
	tw.Flush()
}

// dur prints microseconds as µs below 10 ms, else as ms.
func dur(us float64) string {
	if us < 10_000 {
		return fmt.Sprintf("%.0fµs", us)
	}
	return fmt.Sprintf("%.1fms", us/1000)
}
