package signals

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseMatrix parses a 100-series, 60-sample matrix (a 5-minute
// range at 5 s steps for 100 instances): about 160 KB of JSON.
func BenchmarkParseMatrix(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"metric":{"__name__":"http_requests_total","instance":"10.0.0.%d:8080","version":"v2"},"values":[`, i)
		for j := range 60 {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `[%d.5,"%d.125"]`, 1795773600+5*j, i*j)
		}
		sb.WriteString(`]}`)
	}
	sb.WriteString(`]}}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := ParseResponse(body, Limits{})
		if err != nil || res.Samples() != 6000 {
			b.Fatal(err)
		}
	}
}
