package logs

import (
	"fmt"
	"testing"
)

// benchLines is 100,000 demo logfmt lines, 2% errors, plus a few other
// shapes so the tree has more than two leaves.
func benchLines() []string {
	lines := traffic(100_000, 2_000, "1.3.0")
	for i := 0; i < len(lines); i += 97 {
		lines[i] = fmt.Sprintf(`time=2026-11-27T19:20:37.%06dZ level=warn msg="slow upstream 10.0.%d.%d:8080 took %dms" attempt=%d`, i, i%256, i%200, i%900, i%3)
	}
	for i := 13; i < len(lines); i += 211 {
		lines[i] = fmt.Sprintf(`time=2026-11-27T19:20:37.%06dZ level=error msg="db query failed" err="pq: deadlock detected (tx %x)"`, i, i*2654435761)
	}
	return lines
}

func BenchmarkMine100k(b *testing.B) {
	lines := benchLines()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m, _ := NewMiner(Options{})
		for _, l := range lines {
			m.Add(l)
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkParseLine(b *testing.B) {
	line := demoLine(123, true, "1.3.0", 4)
	b.ReportAllocs()
	for b.Loop() {
		ParseLine(line, 0, nil)
	}
}

func BenchmarkMask(b *testing.B) {
	s := `2026/11/27 19:20:37 [ERROR] upstream 192.168.1.4:8080 timed out after 1.5s req=550e8400-e29b-41d4-a716-446655440000`
	b.ReportAllocs()
	for b.Loop() {
		Mask(s)
	}
}

func BenchmarkCompare(b *testing.B) {
	base, cand := benchLines(), benchLines()
	mb, _ := NewMiner(Options{})
	mc, _ := NewMiner(Options{})
	for i := range base {
		mb.Add(base[i])
		mc.Add(cand[i])
	}
	b.ReportAllocs()
	for b.Loop() {
		Compare(mb, mc, CompareOptions{})
	}
}
