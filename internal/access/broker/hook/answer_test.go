package hook_test

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/access/broker/hook"
)

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		cred     map[string]string
		handle   string
		err      string // "" for success
	}{
		{"credential and handle", `{"credential": {"username": "acc-1", "password": "pw"}, "handle": "user/acc-1"}`, map[string]string{"username": "acc-1", "password": "pw"}, "user/acc-1", ""},
		{"white space around", " \n{\"credential\": {\"token\": \"t\"}}\n\n", map[string]string{"token": "t"}, "", ""},
		{"empty credential", `{"credential": {}, "handle": "group-member:alice"}`, map[string]string{}, "group-member:alice", ""},
		{"handle of 256 bytes", `{"credential": {}, "handle": "` + strings.Repeat("h", 256) + `"}`, map[string]string{}, strings.Repeat("h", 256), ""},
		{"no credential", `{"handle": "h"}`, nil, "", `lacks "credential"`},
		{"null credential", `{"credential": null}`, nil, "", `"credential" must be an object`},
		{"number value", `{"credential": {"port": 5432}}`, nil, "", `values are all strings`},
		{"credential a string", `{"credential": "pw"}`, nil, "", `"credential" must be an object`},
		{"empty key", `{"credential": {"": "pw"}}`, nil, "", `key of "credential" is empty`},
		{"unknown field", `{"credential": {}, "expires": "soon"}`, nil, "", `a field other than`},
		{"wrong case", `{"Credential": {}}`, nil, "", `a field other than`},
		{"handle a number", `{"credential": {}, "handle": 7}`, nil, "", `"handle" must be a string`},
		{"handle too long", `{"credential": {}, "handle": "` + strings.Repeat("h", 257) + `"}`, nil, "", `"handle" is 257 bytes; at most 256`},
		{"handle with a newline", `{"credential": {}, "handle": "a\nb"}`, nil, "", `"handle" must be printable`},
		{"handle with invalid UTF-8", "{\"credential\": {}, \"handle\": \"a\xffb\"}", nil, "", `"handle" must be printable`},
		{"two objects", `{"credential": {}}{"credential": {}}`, nil, "", "not valid JSON (at byte"},
		{"array", `[]`, nil, "", "not a JSON object"},
		{"null", `null`, nil, "", "not a JSON object"},
		{"empty", ``, nil, "", "not valid JSON"},
		{"too large", `{"credential": {"k": "` + strings.Repeat("x", hook.MaxAnswerBytes) + `"}}`, nil, "", "at most 65536 are read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iss, err := hook.ParseAnswer([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(iss.Credential, tc.cred) || iss.Credential == nil || iss.Handle != tc.handle {
				t.Fatalf("got %v %q, want %v %q", iss.Credential, iss.Handle, tc.cred, tc.handle)
			}
		})
	}
}

// TestParseAnswerNeverQuotesTheAnswer feeds answers that hold a secret
// and are wrong in every way ParseAnswer checks.
func TestParseAnswerNeverQuotesTheAnswer(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Hunter2"
	for _, in := range []string{
		`{"credential": {"password": "` + secret + `"`,
		`{"credential": {"password": "` + secret + `"}} trailing`,
		`{"credential": {"password": "` + secret + `", "port": 1}}`,
		`{"` + secret + `": {}}`,
		`{"credential": {"password": "x"}, "handle": "` + secret + "\x01" + `"}`,
		`{"credential": {"password": "x"}, "handle": "` + secret + strings.Repeat("!", 300) + `"}`,
		`"` + secret + `"`,
		secret,
		"{\"credential\": {\"password\": \"" + secret + "\"}, \"handle\": \"" + secret + "\xff\"}",
	} {
		_, err := hook.ParseAnswer([]byte(in))
		if err == nil {
			t.Fatalf("%q: accepted", in)
		}
		if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "Hunter") {
			t.Fatalf("%q: the error quotes the answer: %v", in, err)
		}
	}
}

// answerErrors are ParseAnswer's messages, numbers as N ("UTF-8" too):
// an error outside this set may quote the answer, which may hold a
// credential.
var answerErrors = func() map[string]bool {
	set := map[string]bool{}
	for _, msg := range []string{
		`the answer is N bytes; at most N are read`,
		`the answer is not valid JSON (at byte N of N)`,
		`the answer is not a JSON object {"credential": {...}, "handle": "..."}`,
		`the answer has a field other than "credential" and "handle" (names are case-sensitive)`,
		`the answer lacks "credential": an object of strings, {} when there is nothing to hand over`,
		`"credential" must be an object whose values are all strings`,
		`a key of "credential" is empty or longer than N bytes`,
		`"handle" must be a string`,
		`"handle" is N bytes; at most N are allowed`,
		`"handle" must be printable UTF-8 text without control characters: it is stored and shown in the clear`,
	} {
		set[numbers.ReplaceAllString(msg, "N")] = true
	}
	return set
}()

var numbers = regexp.MustCompile(`[0-9]+`)

// FuzzParseAnswer checks that ParseAnswer never panics, that what it
// accepts obeys the limits and survives a round trip, and that its
// errors are fixed texts (only numbers vary), so they cannot quote the
// answer.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"credential": {"dsn": "postgres://u:p@h/db"}, "handle": "acc-1"}`,
		`{"credential": {}}`,
		`{"credential": {"a": "b"}, "handle": "` + strings.Repeat("h", 257) + `"}`,
		`{"credential": {"a": 1}}`,
		`{"credential": {"": "x"}, "handle": "\u0000"}`,
		`{"handle": "x", "extra": true}`,
		`null`, `[]`, `{`, `{"credential": {}}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		iss, err := hook.ParseAnswer(data)
		if err != nil {
			if !answerErrors[numbers.ReplaceAllString(err.Error(), "N")] {
				t.Fatalf("error %q is not one of ParseAnswer's fixed messages", err)
			}
			return
		}
		if iss.Credential == nil || len(iss.Handle) > hook.MaxHandleBytes || strings.ContainsAny(iss.Handle, "\x00\n\r\x7f") {
			t.Fatalf("accepted an answer outside the limits: %+v", iss)
		}
		for k := range iss.Credential {
			if k == "" || len(k) > hook.MaxCredentialKeyBytes {
				t.Fatalf("accepted credential key %q", k)
			}
		}
		again, err := json.Marshal(map[string]any{"credential": iss.Credential, "handle": iss.Handle})
		if err != nil {
			t.Fatal(err)
		}
		back, err := hook.ParseAnswer(again)
		if err != nil && len(again) <= hook.MaxAnswerBytes {
			t.Fatalf("re-encoded answer refused: %v", err)
		}
		if err == nil && (!maps.Equal(back.Credential, iss.Credential) || back.Handle != iss.Handle) {
			t.Fatalf("round trip changed the answer: %+v, then %+v", iss, back)
		}
	})
}
