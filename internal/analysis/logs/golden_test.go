package logs

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/*.txtar")

// readTxtar splits a txtar file into its comment and named sections.
func readTxtar(data []byte) (comment string, names []string, sections map[string]string) {
	sections = map[string]string{}
	cur := ""
	var b strings.Builder
	flush := func() {
		if cur == "" {
			comment = b.String()
		} else {
			sections[cur] = b.String()
		}
		b.Reset()
	}
	for line := range strings.Lines(string(data)) {
		t := strings.TrimRight(line, "\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			flush()
			cur = t[3 : len(t)-3]
			names = append(names, cur)
			continue
		}
		b.WriteString(line)
	}
	flush()
	return comment, names, sections
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			comment, _, sec := readTxtar(data)
			m := mustMiner(t, Options{})
			for line := range strings.Lines(sec["input"]) {
				m.Add(line)
			}
			var got bytes.Buffer
			for _, s := range templateStrings(m) {
				fmt.Fprintln(&got, s)
			}
			if *update {
				out := comment + "-- input --\n" + sec["input"] + "-- templates --\n" + got.String()
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got.String() != sec["templates"] {
				t.Errorf("%s templates:\n%s\nwant:\n%s", file, got.String(), sec["templates"])
			}
		})
	}
}
