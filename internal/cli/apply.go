package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) applyCommand() *cobra.Command {
	var (
		files  []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f ...]",
		Short: "Create or update resources from YAML or JSON files",
		Long: `Create or update resources from YAML or JSON files.

-f takes a file, a directory (every *.yaml, *.yml and *.json file in it,
sorted by name, not recursive) or - for standard input, and may be repeated.

Everything given is sent as ONE request, so it is applied atomically: every
object is created or updated, or none is. Errors name the file and line they
come from, even when several files were sent together.`,
		Example: `  airlock apply -f examples/quickstart.yaml
  airlock apply -f config/ --dry-run`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usagef("give the files to apply with -f FILE, -f DIR or -f -")
			}
			srcs, err := a.readSources(files)
			if err != nil {
				return err
			}
			b := bundle(srcs)
			c, err := a.client()
			if err != nil {
				return err
			}
			results, err := c.Apply(cmd.Context(), b.source, b.body, b.contentType, dryRun)
			if err != nil {
				return b.attribute(err)
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			for _, r := range results {
				more := ""
				if r.Action == "proposed" {
					more = fmt.Sprintf(" as flag change %s: %s (airlock flags approve %s --reason TEXT)", r.Change, r.Message, r.Change)
				}
				fmt.Fprintf(a.stdout, "%s/%s %s%s%s\n", strings.ToLower(r.Kind), r.Name, r.Action, more, suffix)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) to apply; repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate on the server without changing anything")
	return cmd
}

// source is one input file of an apply.
type source struct {
	name string // as the user named it; "stdin" for -
	data []byte
}

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// readSources reads every file named by the -f arguments, in order.
func (a *app) readSources(args []string) ([]source, error) {
	var (
		out   []source
		total int
	)
	add := func(name string, data []byte) error {
		total += len(data)
		if total > resource.MaxInputBytes {
			return fmt.Errorf("the input is over %d bytes, the most one apply accepts; apply it in several parts", resource.MaxInputBytes)
		}
		out = append(out, source{name: name, data: data})
		return nil
	}
	for _, arg := range args {
		if arg == "-" {
			data, err := io.ReadAll(io.LimitReader(a.stdin, resource.MaxInputBytes+1))
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			if err := add("stdin", data); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", arg, unwrapPath(err))
		}
		if !fi.IsDir() {
			data, err := readLimited(arg)
			if err != nil {
				return nil, err
			}
			if err := add(arg, data); err != nil {
				return nil, err
			}
			continue
		}
		entries, err := os.ReadDir(arg)
		if err != nil {
			return nil, fmt.Errorf("read directory %s: %w", arg, unwrapPath(err))
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && isManifest(e.Name()) {
				names = append(names, e.Name())
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("directory %s holds no *.yaml, *.yml or *.json file", arg)
		}
		sort.Strings(names)
		for _, n := range names {
			p := filepath.Join(arg, n)
			data, err := readLimited(p)
			if err != nil {
				return nil, err
			}
			if err := add(p, data); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, resource.MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// unwrapPath drops the *fs.PathError wrapping whose path the caller
// already prints.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// applyBundle is the one request an apply sends.
type applyBundle struct {
	source      string // X-Airlock-Source
	body        []byte
	contentType string
	// parts maps line ranges of body back to files; nil for one file.
	parts []part
}

type part struct {
	name      string
	firstLine int // 1-based line of body where the file starts
	lines     int
}

// bundle joins the sources into one request. One file is sent unchanged,
// named by its path. Several files are joined as YAML documents separated
// by "---" and named by the comma-joined paths; attribute maps the
// server's "SOURCE:LINE:" positions back to each file's own line.
func bundle(srcs []source) applyBundle {
	if len(srcs) == 1 {
		ct := client.ContentYAML
		if strings.EqualFold(filepath.Ext(srcs[0].name), ".json") {
			ct = client.ContentJSON
		}
		return applyBundle{source: srcs[0].name, body: srcs[0].data, contentType: ct}
	}
	var (
		buf   bytes.Buffer
		names []string
		parts []part
		line  = 1
	)
	for i, s := range srcs {
		if i > 0 {
			buf.WriteString("---\n")
			line++
		}
		data := s.data
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data[:len(data):len(data)], '\n')
		}
		n := bytes.Count(data, []byte("\n"))
		parts = append(parts, part{name: s.name, firstLine: line, lines: n})
		buf.Write(data)
		line += n
		names = append(names, s.name)
	}
	return applyBundle{source: strings.Join(names, ","), body: buf.Bytes(), contentType: client.ContentYAML, parts: parts}
}

// attribute rewrites positions in an apply error from the joined body to
// the file they belong to.
func (b applyBundle) attribute(err error) error {
	var ae *client.APIError
	if b.parts == nil || !errors.As(err, &ae) {
		return err
	}
	out := *ae
	out.Errors = make([]string, len(ae.Errors))
	for i, e := range ae.Errors {
		out.Errors[i] = b.attributeLine(e)
	}
	out.Detail = b.attributeLine(ae.Detail)
	return &out
}

func (b applyBundle) attributeLine(msg string) string {
	prefix := b.source + ":"
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return msg
	}
	digits, tail, ok := strings.Cut(rest, ":")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil {
		return msg
	}
	for _, p := range b.parts {
		if n >= p.firstLine && n < p.firstLine+max(p.lines, 1) {
			return fmt.Sprintf("%s:%d:%s", p.name, n-p.firstLine+1, tail)
		}
	}
	return msg
}
