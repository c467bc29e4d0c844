package cli

import (
	"context"
	"sort"

	"encoding/json"
	"fmt"
	"github.com/airlock-dev/airlock/internal/client"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
	formatName  = "name"
)

// outputFlag adds -o to cmd, accepting formats (the first is the default),
// and returns where the value lands.
func outputFlag(cmd *cobra.Command, formats ...string) *string {
	var v string
	named := slices.DeleteFunc(slices.Clone(formats), func(f string) bool { return f == "" })
	cmd.Flags().StringVarP(&v, "output", "o", formats[0], "output format: "+strings.Join(named, "|"))
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, a []string) error {
		if !slices.Contains(formats, v) {
			return usagef("--output %q is not one of %s", v, strings.Join(named, ", "))
		}
		if prev != nil {
			return prev(c, a)
		}
		return nil
	}
	return &v
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeYAML prints v as YAML, honouring its JSON field names.
func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// writeData prints v as JSON or YAML.
func writeData(w io.Writer, format string, v any) error {
	if format == formatYAML {
		return writeYAML(w, v)
	}
	return writeJSON(w, v)
}

// objectList is what json and yaml print for several objects; apply reads
// it back.
type objectList struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Items      []*resource.Object `json:"items"`
}

// printObjects prints objs in format. asList prints json and yaml as a
// List even for one object (get KIND); otherwise a single object prints
// bare (get KIND NAME).
func (a *app) printObjects(format string, objs []*resource.Object, asList bool) error {
	w := a.stdout
	switch format {
	case formatJSON, formatYAML:
		if !asList && len(objs) == 1 {
			return writeData(w, format, objs[0])
		}
		if objs == nil {
			objs = []*resource.Object{}
		}
		return writeData(w, format, objectList{APIVersion: resource.APIVersion, Kind: "List", Items: objs})
	case formatName:
		for _, o := range objs {
			fmt.Fprintf(w, "%s/%s\n", strings.ToLower(o.Kind), o.Metadata.Name)
		}
		return nil
	}
	if len(objs) == 0 {
		fmt.Fprintln(a.stderr, "No resources found.")
		return nil
	}
	// One table per kind, in order of first appearance.
	var kinds []string
	byKind := map[string][]*resource.Object{}
	for _, o := range objs {
		if _, ok := byKind[o.Kind]; !ok {
			kinds = append(kinds, o.Kind)
		}
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	for i, k := range kinds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := a.printTable(w, byKind[k]); err != nil {
			return err
		}
	}
	return nil
}

// column is one table column; value reads it from the object as a generic
// JSON tree, so the CLI needs none of the domain types.
type column struct {
	header string
	value  func(m map[string]any, now time.Time) string
}

func field(path string) func(map[string]any, time.Time) string {
	return func(m map[string]any, _ time.Time) string { return str(lookup(m, path)) }
}

// columnsFor returns the table columns of a kind between NAME and AGE;
// kinds without their own columns print just NAME and AGE.
func columnsFor(kind string) []column {
	return map[string][]column{
		"Environment": {
			{"TIER", field("spec.tier")},
			{"ISOLATION", isolation},
			{"DATA", field("spec.data")},
			{"VIOLATIONS", violations},
		},
		"Pipeline": {
			{"STAGES", stages},
		},
		"Release": {
			{"APP", field("spec.app")},
			{"VERSION", field("spec.version")},
			{"DIGEST", func(m map[string]any, _ time.Time) string { return shortDigest(str(lookup(m, "spec.artifact.digest"))) }},
			{"COMMIT", func(m map[string]any, _ time.Time) string { return shorten(str(lookup(m, "spec.commit")), 12) }},
			{"CREATOR", field("spec.creator")},
		},
		"Evidence": {
			{"RELEASE", field("spec.release")},
			{"TYPE", field("spec.type")},
			{"SUITE", field("spec.suite")},
			{"FORMAT", field("spec.format")},
			{"TRUSTED", func(m map[string]any, _ time.Time) string { return yesNo(lookup(m, "spec.trusted") == true) }},
			{"SIGNER", field("spec.signer")},
			{"FACTS", func(m map[string]any, _ time.Time) string {
				facts, _ := lookup(m, "spec.facts").(map[string]any)
				return factSummary(str(lookup(m, "spec.type")), facts)
			}},
		},
		"Key": {
			{"ALGORITHM", field("spec.algorithm")},
			{"KEY-ID", func(m map[string]any, _ time.Time) string { return shorten(str(lookup(m, "spec.keyID")), 16) }},
			{"IDENTITY", field("spec.identity")},
			{"DESCRIPTION", field("spec.description")},
		},
		"Promotion": {
			{"APP", field("spec.app")},
			{"VERSION", field("spec.version")},
			{"FROM", field("spec.from")},
			{"TO", field("spec.to")},
			{"PHASE", field("status.phase")},
			{"GATES", gateCount},
			{"EMERGENCY", emergencyCell},
		},
		"Review": {
			{"APP", field("spec.app")},
			{"VERSION", field("spec.version")},
			{"ENV", field("spec.environment")},
			{"INCIDENT", field("spec.incident")},
			{"PHASE", field("status.phase")},
			{"MISSING", func(m map[string]any, _ time.Time) string {
				if s := str(lookup(m, "status.missing")); s != "" {
					return s
				}
				return "-"
			}},
			{"DUE", reviewDue},
			{"OVERDUE", reviewOverdue},
		},
		"Flag": {
			{"APP", field("spec.app")},
			{"ENV", field("spec.environment")},
			{"KEY", field("spec.key")},
			{"TYPE", field("spec.type")},
			{"ENABLED", func(m map[string]any, _ time.Time) string { return fmt.Sprint(lookup(m, "spec.enabled") == true) }},
			{"DEFAULT", field("spec.defaultVariant")},
		},
		"Rollout": {
			{"APP", field("spec.app")},
			{"ENV", field("spec.environment")},
			{"CANDIDATE", field("spec.candidate.version")},
			{"STABLE", func(m map[string]any, _ time.Time) string {
				if v := str(lookup(m, "spec.stable.version")); v != "" {
					return v
				}
				return "-"
			}},
			{"STRATEGY", field("spec.strategy.type")},
			{"PHASE", field("status.phase")},
			{"WEIGHT", func(m map[string]any, _ time.Time) string {
				if w, ok := lookup(m, "status.weight").(float64); ok {
					return fmt.Sprintf("%.0f%%", w)
				}
				return "0%"
			}},
		},
		"AccessRequest": {
			{"REQUESTER", field("spec.requester")},
			{"ENV", field("spec.environment")},
			{"RESOURCE", field("spec.resource")},
			{"ROLE", field("spec.role")},
			{"STATE", field("status.state")},
			{"UNTIL", func(m map[string]any, _ time.Time) string { return orNone(str(lookup(m, "status.notAfter"))) }},
			{"REASON", func(m map[string]any, _ time.Time) string { return cell(str(lookup(m, "spec.reason")), maxSummaryCell) }},
		},
		"AccessResource": {
			{"ENV", field("spec.environment")},
			{"BROKER", field("spec.broker.type")},
			{"ROLES", func(m map[string]any, _ time.Time) string {
				roles, _ := lookup(m, "spec.roles").(map[string]any)
				names := make([]string, 0, len(roles))
				for n := range roles {
					names = append(names, n)
				}
				sort.Strings(names)
				return strings.Join(names, ",")
			}},
			{"MAX", func(m map[string]any, _ time.Time) string {
				if v := str(lookup(m, "spec.maxDuration")); v != "" {
					return v
				}
				return "8h"
			}},
		},
		"FlagChange": {
			{"FLAG", field("spec.flag")},
			{"OP", field("spec.operation")},
			{"PHASE", field("status.phase")},
			{"BY", field("spec.proposedBy")},
			{"SUMMARY", func(m map[string]any, _ time.Time) string {
				return cell(str(lookup(m, "spec.summary")), maxSummaryCell)
			}},
			{"WAITING FOR", func(m map[string]any, _ time.Time) string {
				switch str(lookup(m, "status.phase")) {
				case "Pending":
					return orNone(str(lookup(m, "status.missing")))
				case "Approved":
					return "deployment window"
				}
				return "-"
			}},
		},
		"ChangeRequest": {
			{"APP", field("spec.app")},
			{"VERSION", field("spec.version")},
			{"ENV", field("spec.environment")},
			{"RISK", field("spec.risk")},
			{"PHASE", field("status.phase")},
			{"EXTERNAL", func(m map[string]any, _ time.Time) string {
				if k := str(lookup(m, "spec.external.key")); k != "" {
					return str(lookup(m, "spec.external.system")) + ":" + k
				}
				return "-"
			}},
			{"RAISED-BY", field("spec.raisedBy")},
		},
		"Incident": {
			{"SEVERITY", field("spec.severity")},
			{"STATE", field("status.state")},
			{"SUMMARY", func(m map[string]any, _ time.Time) string {
				return cell(str(lookup(m, "spec.summary")), maxSummaryCell)
			}},
			{"OPENED-BY", field("spec.openedBy")},
		},
		"Token": {
			{"ROLES", field("spec.roles")},
			{"ENVIRONMENTS", func(m map[string]any, _ time.Time) string { return orAll(str(lookup(m, "spec.environments"))) }},
			{"EXPIRES", func(m map[string]any, now time.Time) string { return expires(lookup(m, "spec.expiresAt"), now) }},
			{"STATUS", tokenStatus},
		},
	}[kind]
}

// listCommand is a `list` subcommand that prints what list returns, as a
// table (the kind's columns) or -o json|yaml|name.
func (a *app) listCommand(short, long string, list func(*client.Client, context.Context) ([]*resource.Object, error)) *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: short, Long: long, Args: args(cobra.NoArgs)}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML, formatName)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		objs, err := list(c, cmd.Context())
		if err != nil {
			return err
		}
		return a.printObjects(*output, objs, true)
	}
	return cmd
}

func (a *app) printTable(w io.Writer, objs []*resource.Object) error {
	cols := columnsFor(objs[0].Kind)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	headers := []string{"NAME"}
	for _, c := range cols {
		headers = append(headers, c.header)
	}
	headers = append(headers, "AGE")
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	now := a.now()
	for _, o := range objs {
		m, err := tree(o)
		if err != nil {
			return err
		}
		row := []string{o.Metadata.Name}
		for _, c := range cols {
			row = append(row, orNone(c.value(m, now)))
		}
		row = append(row, age(o.Metadata.CreatedAt, now))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// tree returns o as a generic JSON tree.
func tree(o *resource.Object) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", o.Ref(), err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
	}
	return m, nil
}

// lookup follows a dotted path of object keys.
func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// str renders a JSON value for a table cell: lists comma-joined.
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			parts = append(parts, str(x))
		}
		return strings.Join(parts, ",")
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func orAll(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// maxSummaryCell is how much of a free-text summary a table shows.
const maxSummaryCell = 60

// cell fits free text into a table cell: white space collapsed to single
// spaces, and at most n characters, the last one "…" when cut.
func cell(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// shortDigest keeps the algorithm and 12 hex digits, like docker.
func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok {
		return alg + ":" + shorten(hex, 12)
	}
	return shorten(d, 19)
}

func isolation(m map[string]any, _ time.Time) string {
	s := str(lookup(m, "spec.isolation.level"))
	if lookup(m, "spec.isolation.waiver") != nil {
		s += " (waiver)"
	}
	return s
}

// violations lists the rules an environment breaks, waived ones marked, so
// a waiver is never silent.
func violations(m map[string]any, _ time.Time) string {
	list, _ := lookup(m, "status.violations").([]any)
	var parts []string
	for _, v := range list {
		vm, ok := v.(map[string]any)
		if !ok {
			parts = append(parts, str(v))
			continue
		}
		p := str(vm["rule"])
		if p == "" {
			p = str(vm["message"])
		}
		if vm["waived"] == true {
			p += " (waived)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

func stages(m map[string]any, _ time.Time) string {
	list, _ := lookup(m, "spec.stages").([]any)
	var parts []string
	for _, s := range list {
		if sm, ok := s.(map[string]any); ok {
			parts = append(parts, str(sm["environment"]))
		}
	}
	return strings.Join(parts, " -> ")
}

func expires(v any, now time.Time) string {
	s, _ := v.(string)
	if s == "" {
		return "never"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	if !t.After(now) {
		return "expired"
	}
	return "in " + humanDuration(t.Sub(now))
}

func tokenStatus(m map[string]any, now time.Time) string {
	if r := str(lookup(m, "status.revokedAt")); r != "" {
		return "revoked"
	}
	if expires(lookup(m, "spec.expiresAt"), now) == "expired" {
		return "expired"
	}
	return "active"
}

// age renders how long ago t was, kubectl style; "<unknown>" for zero.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(t))
}

func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%dy", int(d/(365*24*time.Hour)))
}

// parseDuration reads a Go duration with an extra "d" (days) unit, e.g.
// "90d", "12h", "1d12h".
func parseDuration(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("duration %q: write e.g. 90d, 12h or 30m", orig)
		}
		total = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: write e.g. 90d, 12h or 30m", orig)
	}
	return total + d, nil
}
