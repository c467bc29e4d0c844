package sqlstore

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestParseLabels(t *testing.T) {
	for _, m := range []map[string]string{
		{"app": "shop"},
		{"app": "shop", "airlock.dev/team": "pay-ments_1.2", "empty": ""},
		{"a:b": "c,d", "x": "{y}"},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := parseLabels(string(b)); !maps.Equal(got, m) {
			t.Errorf("parseLabels(%s) = %v, want %v", b, got, m)
		}
	}
	for _, s := range []string{`{"a":"b\"c"}`, `{"a":1}`, `{"a" "b"}`, `{"a":"b",}`, `["a"]`, `{"a":"b"`} {
		if got := parseLabels(s); got != nil {
			t.Errorf("parseLabels(%s) = %v, want nil (fall back to encoding/json)", s, got)
		}
	}
}
