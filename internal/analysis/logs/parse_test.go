package logs

import (
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		level     Level
		content   string
	}{
		{"demo error", `time=2026-11-27T19:20:37.1Z level=error msg="payment declined: id=123" method=GET path=/ status=500 duration_ms=3 version="1.2.0"`,
			LevelError, "payment declined: id=123"},
		{"demo info", `time=2026-11-27T19:20:37.1Z level=info msg="request served" method=GET path=/ status=200 duration_ms=3 version="1.2.0"`,
			LevelInfo, "request served"},
		{"logfmt err key appended", `level=error msg="query failed" err="dial tcp: timeout" table=users`,
			LevelError, "query failed err=dial tcp: timeout"},
		{"logfmt escaped quote", `lvl=WARN msg="say \"hi\""`, LevelWarn, `say "hi"`},
		{"logfmt without msg", `time=1 level=error component=db op=connect`, LevelError, "component=db op=connect"},
		{"slog text", `time=2026-11-27T19:20:37.000Z level=ERROR msg="canary step failed" app=shop`, LevelError, "canary step failed"},
		{"json", `{"time":"x","level":"error","msg":"db failed","error":"refused"}`, LevelError, "db failed error=refused"},
		{"json message key", `{"severity":"WARNING","message":"slow query"}`, LevelWarn, "slow query"},
		{"json bunyan number", `{"level":50,"msg":"boom"}`, LevelError, "boom"},
		{"json without msg", `{"level":"fatal","code":7}`, LevelFatal, `{"level":"fatal","code":7}`},
		{"bracketed", `2026-11-27 19:20:37 [error] upstream timed out`, LevelError, `2026-11-27 19:20:37 [error] upstream timed out`},
		{"upper case word", `2026/11/27 19:20:37 ERROR: disk full`, LevelError, `2026/11/27 19:20:37 ERROR: disk full`},
		{"lower case bare word is prose", `an error occurred`, LevelUnknown, `an error occurred`},
		{"klog", `E1127 19:20:37.123456 1 main.go:42] failed`, LevelError, `E1127 19:20:37.123456 1 main.go:42] failed`},
		{"level pair in plain line", `2026/11/27 19:20:37 level=fatal "oops`, LevelFatal, `2026/11/27 19:20:37 level=fatal "oops`},
		{"critical", `[CRITICAL] out of memory`, LevelFatal, `[CRITICAL] out of memory`},
		{"trailing newline", "level=info msg=hello\r\n", LevelInfo, "hello"},
		{"no level", `GET / 200`, LevelUnknown, `GET / 200`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln := ParseLine(tt.raw, 0, nil)
			if ln.Level != tt.level || ln.Content != tt.content {
				t.Errorf("ParseLine(%q) = level %v content %q, want %v %q", tt.raw, ln.Level, ln.Content, tt.level, tt.content)
			}
		})
	}
}

func TestParseLineTruncates(t *testing.T) {
	t.Parallel()
	raw := "level=error msg=" + strings.Repeat("é", 100) // 2 bytes a rune
	ln := ParseLine(raw, 21, nil)
	if len(ln.Raw) > 21 || !strings.HasPrefix(raw, ln.Raw) {
		t.Fatalf("Raw = %q (%d bytes), want a prefix of at most 21 bytes", ln.Raw, len(ln.Raw))
	}
	if ln.Raw != "level=error msg=éé" {
		t.Errorf("Raw = %q, want the cut on a rune boundary", ln.Raw)
	}
	if ln.Level != LevelError {
		t.Errorf("Level = %v, want error", ln.Level)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"payment declined: id=123", "payment declined: id=<*>"},
		{"request served", "request served"},
		{"version 1.2.0 and v1 http2 sha256", "version <*> and v1 http2 sha256"},
		{"took 3ms then 1h2m3.5s, 250µs", "took <*> then <*>, <*>"},
		{"5min stays", "5min stays"},
		{"from 10.0.0.1:5432 and 192.168.1.1", "from <*> and <*>"},
		{"ipv6 fe80::1ff:fe23:4567:890a and ::1", "ipv6 <*> and <*>"},
		{"words add:bed:fee stay", "words add:bed:fee stay"},
		{"req 550e8400-e29b-41d4-a716-446655440000 done", "req <*> done"},
		{"trace=4bf92f3577b34da6 ptr 0xDEADbeef deadbeef", "trace=<*> ptr <*> deadbeef"},
		{"at 2026-11-27T19:20:37.123Z and 2026/11/27 19:20:37", "at <*> and <*>"},
		{"at 2026-11-27T19:20:37+01:00 ok", "at <*> ok"},
		{"clock 19:20:37.5 x", "clock <*> x"},
		{`user "bob smith" can't open 'a b'`, `user <*> can't open <*>`},
		{`unterminated "quote here`, `unterminated "quote here`},
		{`glued "quote"s and 'it'll`, `glued "quote"s and 'it'll`},
		{"temp -5 and id42 and 42id", "temp -<*> and id42 and 42id"},
		{"", ""},
		{"<*> literal", "<*> literal"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Level{
		"ERROR": LevelError, "err": LevelError, "Warning": LevelWarn, "info": LevelInfo,
		"debug": LevelDebug, "crit": LevelFatal, "panic": LevelFatal, "loud": LevelUnknown, "": LevelUnknown,
	} {
		if got := ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %v, want %v", in, got, want)
		}
	}
}
