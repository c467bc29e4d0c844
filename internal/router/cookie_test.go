package router

import (
	"net/http"
	"strings"
	"testing"
)

func TestCookieValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lines []string
		want  string
		ok    bool
	}{
		{[]string{"airlock_version=1.4.1"}, "1.4.1", true},
		{[]string{"a=b; airlock_version=1.4.1; c=d"}, "1.4.1", true},
		{[]string{"a=b", "airlock_version=\"2.0.0\""}, "2.0.0", true},
		{[]string{"xairlock_version=1.0.0"}, "", false},
		{[]string{"airlock_version"}, "", false},
		{[]string{"airlock_versionX=1"}, "", false},
		{[]string{""}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, ok := cookieValue(tt.lines, "airlock_version")
		if got != tt.want || ok != tt.ok {
			t.Errorf("cookieValue(%q) = %q, %v; want %q, %v", tt.lines, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzCookieValue checks the allocation-free cookie lookup against
// net/http's parser on the same header.
func FuzzCookieValue(f *testing.F) {
	f.Add("a=b; airlock_version=1.4.1; c=d")
	f.Add("airlock_version=\"1.0\"")
	f.Add(";;airlock_version=;")
	f.Fuzz(func(t *testing.T, line string) {
		got, ok := cookieValue([]string{line}, "airlock_version")
		req := &http.Request{Header: http.Header{"Cookie": {line}}}
		c, err := req.Cookie("airlock_version")
		if err != nil {
			return // net/http rejects the header or finds no such cookie; we may still read it
		}
		if !validToken(c.Value) {
			return // values the router never issues
		}
		if !ok || got != c.Value {
			if strings.Count(line, "airlock_version=") > 1 {
				return // first occurrence rules differ for malformed duplicates
			}
			t.Fatalf("cookieValue(%q) = %q, %v; net/http says %q", line, got, ok, c.Value)
		}
	})
}
