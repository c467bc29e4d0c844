package cli

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) evidenceCommand() *cobra.Command {
	return group("evidence", "Attach CI reports and sign-offs to releases, and show them",
		a.evidenceAddCommand(),
		a.evidenceListCommand(),
	)
}

func typeNames() string {
	names := make([]string, len(evidence.Types))
	for i, t := range evidence.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func suiteNames() string {
	names := make([]string, len(evidence.Suites))
	for i, s := range evidence.Suites {
		names[i] = string(s)
	}
	return strings.Join(names, "|")
}

func (a *app) evidenceAddCommand() *cobra.Command {
	var typ, suite, name, kind, role, reason, reference string
	cmd := &cobra.Command{
		Use:   "add APP VERSION --type TYPE FILE | --type signoff --kind KIND --role ROLE --reason TEXT",
		Short: "Attach a CI report or a sign-off to a release",
		Long: `Attach a CI report to a release. The server stores the document as
delivered (content-addressed), parses it into facts that gates judge, and
marks it trusted when it arrives in a DSSE envelope signed by a registered
key for this release's artifact. FILE - reads standard input.

Types: ` + typeNames() + `.
--suite names the kind of a test suite (` + suiteNames() + `; default unit).
--name tells apart several reports of one type (e.g. one per module); for
each type, suite and name only the latest counts.

A sign-off (--type signoff) is a person's recorded decision and has no
FILE: give --kind (uat, accessibility, compliance, ...), the --role you sign
as, and a --reason.`,
		Example: `  airlock evidence add shop 1.4.0 --type tests report.xml
  go test -json ./... | airlock evidence add shop 1.4.0 --type tests --suite integration -
  airlock evidence add shop 1.4.0 --type coverage cover.out
  airlock evidence add shop 1.4.0 --type signoff --kind uat --role business-owner --reason "UAT passed, ticket QA-12"`,
		Args: args(cobra.RangeArgs(2, 3)),
	}
	output := outputFlag(cmd, "", formatTable, formatJSON, formatYAML)
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "evidence type (required): "+typeNames())
	f.StringVar(&suite, "suite", "", "tests only: the kind of suite, "+suiteNames()+" (default unit)")
	f.StringVar(&name, "name", "", "name of this report, to keep several of one type")
	f.StringVar(&kind, "kind", "", "signoff only: what is signed off (uat, accessibility, compliance, ...)")
	f.StringVar(&role, "role", "", "signoff only: the role you sign as (e.g. business-owner)")
	f.StringVar(&reason, "reason", "", "signoff only: why, in words a reviewer can check")
	f.StringVar(&reference, "reference", "", "signoff only: a ticket or document backing it")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if typ == "" {
			return usagef("--type is required: one of %s", typeNames())
		}
		t, err := evidence.ParseType(typ)
		if err != nil {
			return &usageError{err}
		}
		app, version := argv[0], argv[1]
		if t == evidence.Signoff {
			return a.addSignoff(cmd, output, argv, client.SignoffRequest{App: app, Version: version, Kind: kind, Role: role, Reason: reason, Reference: reference})
		}
		for flag, v := range map[string]string{"--kind": kind, "--role": role, "--reason": reason, "--reference": reference} {
			if v != "" {
				return usagef("%s is for --type signoff only", flag)
			}
		}
		if len(argv) != 3 {
			return usagef("give the report FILE (or - for standard input) after APP and VERSION")
		}
		if suite != "" {
			if t != evidence.Tests {
				return usagef("--suite is for --type tests only")
			}
			if !slices.Contains(evidence.Suites, evidence.Suite(suite)) {
				return usagef("--suite %q is not one of %s", suite, suiteNames())
			}
		}
		var body io.Reader
		if file := argv[2]; file == "-" {
			body = a.stdin
		} else {
			fh, err := os.Open(file)
			if err != nil {
				return fmt.Errorf("report %s: %w", file, unwrapPath(err))
			}
			defer fh.Close()
			if fi, err := fh.Stat(); err != nil {
				return fmt.Errorf("report %s: %w", file, err)
			} else if !fi.Mode().IsRegular() {
				return fmt.Errorf("report %s is not a regular file", file)
			}
			body = fh
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.AddEvidence(cmd.Context(), client.EvidenceRequest{App: app, Version: version, Type: string(t), Suite: suite, Name: name, Body: body})
		if err != nil {
			return err
		}
		return a.printEvidence(*output, obj)
	}
	return cmd
}

func (a *app) addSignoff(cmd *cobra.Command, output *string, argv []string, req client.SignoffRequest) error {
	if len(argv) == 3 {
		return usagef("a sign-off has no FILE: give --kind, --role and --reason")
	}
	switch {
	case req.Kind == "":
		return usagef("--kind is required for a sign-off (e.g. uat, accessibility, compliance)")
	case req.Role == "":
		return usagef("--role is required for a sign-off: the role you sign as (e.g. business-owner)")
	case req.Reason == "":
		return usagef("--reason is required for a sign-off")
	}
	if s, _ := cmd.Flags().GetString("suite"); s != "" {
		return usagef("--suite is for --type tests only")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	obj, err := c.AddSignoff(cmd.Context(), req)
	if err != nil {
		return err
	}
	return a.printEvidence(*output, obj)
}

// printEvidence reports what the server made of one piece of evidence:
// where it is attached, whether it is trusted (and by whom, or why not),
// and its telling facts.
func (a *app) printEvidence(output string, obj *resource.Object) error {
	if output != "" {
		return a.printObjects(output, []*resource.Object{obj}, false)
	}
	ev, err := client.DecodeEvidence(obj)
	if err != nil {
		return err
	}
	what := ev.Type
	if ev.Format != "" {
		what += " (" + ev.Format
		if ev.Suite != "" {
			what += ", " + ev.Suite + " suite"
		}
		what += ")"
	}
	if ev.Name != "" && ev.Name != ev.Type && ev.Name != ev.Type+"-"+ev.Suite {
		what += " " + strconv.Quote(ev.Name)
	}
	trust := "trusted"
	switch {
	case ev.Signer != "":
		trust += " by " + ev.Signer
	case ev.TrustReason != "":
		trust += ": " + ev.TrustReason
	}
	if ev.Signer == "" && ev.SubmittedBy != "" {
		trust += " (" + ev.SubmittedBy + ")"
	}
	if !ev.Trusted {
		trust = "untrusted"
		if ev.TrustReason != "" {
			trust += ": " + ev.TrustReason
		}
	}
	fmt.Fprintf(a.stdout, "evidence/%s %s attached to %s %s: %s\n", obj.Metadata.Name, what, ev.App, ev.Version, trust)
	if s := factSummary(ev.Type, ev.Facts); s != "" {
		fmt.Fprintf(a.stdout, "  %s\n", s)
	}
	return nil
}

func (a *app) evidenceListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list APP VERSION",
		Short: "List the evidence attached to a release, with its telling facts",
		Long: `List the evidence attached to a release: one row per report, with
whether it is trusted, who signed it and a summary of its facts. json and
yaml print every fact.`,
		Example: `  airlock evidence list shop 1.4.0
  airlock evidence list shop 1.4.0 -o json`,
		Args: args(cobra.ExactArgs(2)),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML, formatName)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		l, err := c.ListEvidence(cmd.Context(), argv[0], argv[1])
		if err != nil {
			return err
		}
		if *output != formatTable {
			return a.printObjects(*output, l.Items, true)
		}
		if len(l.Items) == 0 {
			fmt.Fprintf(a.stderr, "No evidence attached to %s %s.\n", argv[0], argv[1])
			return nil
		}
		type row struct {
			obj *resource.Object
			ev  *client.EvidenceSpec
		}
		rows := make([]row, 0, len(l.Items))
		for _, o := range l.Items {
			ev, err := client.DecodeEvidence(o)
			if err != nil {
				return err
			}
			rows = append(rows, row{o, ev})
		}
		slices.SortStableFunc(rows, func(x, y row) int {
			return cmp.Or(
				cmp.Compare(typeRank(x.ev.Type), typeRank(y.ev.Type)),
				cmp.Compare(x.ev.Suite, y.ev.Suite),
				cmp.Compare(x.ev.Name, y.ev.Name),
				x.obj.Metadata.CreatedAt.Compare(y.obj.Metadata.CreatedAt),
			)
		})
		now := a.now()
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "TYPE\tSUITE\tNAME\tFORMAT\tTRUSTED\tSIGNER\tKEY\tFACTS\tAGE")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				r.ev.Type, orNone(r.ev.Suite), orNone(r.ev.Name), orNone(r.ev.Format), yesNo(r.ev.Trusted),
				orNone(signerOf(r.ev)), orNone(shorten(r.ev.KeyID, 16)), orNone(factSummary(r.ev.Type, r.ev.Facts)),
				age(r.obj.Metadata.CreatedAt, now))
		}
		return tw.Flush()
	}
	return cmd
}

// signerOf names who vouches for a piece of evidence: the registered key's
// identity, or for a sign-off the person who recorded it.
func signerOf(ev *client.EvidenceSpec) string {
	if ev.Signer == "" && ev.Type == string(evidence.Signoff) {
		return ev.SubmittedBy
	}
	return ev.Signer
}

func typeRank(t string) int {
	if i := slices.Index(evidence.Types, evidence.Type(t)); i >= 0 {
		return i
	}
	return len(evidence.Types)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// factSummary renders the few facts of a piece of evidence that tell the
// most, e.g. "48 passed, 0 failed" or "0 critical, 1 high"; empty when
// none of them is there.
func factSummary(typ string, facts map[string]any) string {
	num := func(key string) (float64, bool) {
		v, ok := facts[key].(float64)
		return v, ok
	}
	count := func(key string) string {
		if v, ok := num(key); ok {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return "?"
	}
	var parts []string
	switch evidence.Type(typ) {
	case evidence.Tests:
		parts = append(parts, count("tests.passed")+" passed", count("tests.failed")+" failed")
		if v, ok := num("tests.errors"); ok && v > 0 {
			parts = append(parts, count("tests.errors")+" errors")
		}
		if v, ok := num("tests.skipped"); ok && v > 0 {
			parts = append(parts, count("tests.skipped")+" skipped")
		}
	case evidence.Coverage:
		if v, ok := num("coverage.line_percent"); ok {
			parts = append(parts, strconv.FormatFloat(v, 'f', 1, 64)+"% lines")
		}
		if v, ok := num("coverage.branch_percent"); ok {
			parts = append(parts, strconv.FormatFloat(v, 'f', 1, 64)+"% branches")
		}
	case evidence.SAST, evidence.SCA, evidence.ContainerScan, evidence.DAST, evidence.IaC:
		if _, ok := num(typ + ".count.critical"); ok {
			parts = append(parts, count(typ+".count.critical")+" critical", count(typ+".count.high")+" high")
		}
	case evidence.Lint:
		if _, ok := num("lint.count.total"); ok {
			parts = append(parts, count("lint.count.total")+" findings")
			if m, _ := facts["lint.max_severity"].(string); m != "" && m != string(evidence.None) {
				parts = append(parts, "max "+m)
			}
		}
	case evidence.SBOM:
		if _, ok := num("sbom.components"); ok {
			parts = append(parts, count("sbom.components")+" components")
		}
	case evidence.Perf:
		if v, ok := num("perf.p95_ms"); ok {
			parts = append(parts, "p95 "+trimFloat(v, 1)+"ms")
		}
		if v, ok := num("perf.error_rate"); ok {
			parts = append(parts, "errors "+trimFloat(v*100, 2)+"%")
		}
	case evidence.Attestation:
		if p, _ := facts["attestation.predicate_type"].(string); p != "" {
			parts = append(parts, p)
		}
	case evidence.Signature:
		if v, ok := facts["signature.verified"].(bool); ok {
			parts = append(parts, map[bool]string{true: "verified", false: "not verified"}[v])
		}
	case evidence.Changeset:
		if _, ok := num("changeset.count"); ok {
			parts = append(parts, count("changeset.count")+" paths")
		}
	case evidence.Signoff:
		if k, _ := facts["signoff.kind"].(string); k != "" {
			s := k
			if r, _ := facts["signoff.role"].(string); r != "" {
				s += " as " + r
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

// trimFloat formats v with at most prec decimals, without trailing zeros.
func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
