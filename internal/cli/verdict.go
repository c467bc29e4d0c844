package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) verdictCommand() *cobra.Command {
	return group("verdict", "List the analysis's verdicts, accept or override them, and see how often each signal was overridden",
		a.verdictListCommand(),
		a.verdictShowCommand(),
		a.verdictDecideCommand("accept"),
		a.verdictDecideCommand("override"),
		a.verdictOverridesCommand(),
	)
}

// verdictView is the part of a Verdict object the CLI shows.
type verdictView struct {
	Spec struct {
		App         string `json:"app"`
		Environment string `json:"environment"`
		Version     string `json:"version"`
		Subject     struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"subject"`
		Outcome    string   `json:"outcome"`
		Summary    string   `json:"summary"`
		Reasons    []string `json:"reasons"`
		Confidence float64  `json:"confidence"`
		Score      *float64 `json:"score"`
		Step       int      `json:"step"`
		Judge      string   `json:"judge"`
		Action     string   `json:"action"`
		Automatic  bool     `json:"automatic"`
		Signals    []struct {
			Name    string `json:"name"`
			Outcome string `json:"outcome"`
			Detail  string `json:"detail"`
		} `json:"signals"`
	}
	Status struct {
		Override *struct {
			By      string `json:"by"`
			Outcome string `json:"outcome"`
		} `json:"override"`
		Accepted *struct {
			By string `json:"by"`
		} `json:"accepted"`
		Executed *struct {
			Action string `json:"action"`
			By     string `json:"by"`
		} `json:"executed"`
	}
}

func decodeVerdict(o *resource.Object) (verdictView, error) {
	var v verdictView
	if err := o.DecodeSpec(&v.Spec); err != nil {
		return v, err
	}
	return v, o.DecodeStatus(&v.Status)
}

// decision says who decided on a verdict: "overridden to pass by bob",
// "accepted by alice", or "" while nobody has.
func (v verdictView) decision() string {
	switch {
	case v.Status.Override != nil:
		return fmt.Sprintf("overridden to %s by %s", v.Status.Override.Outcome, v.Status.Override.By)
	case v.Status.Accepted != nil:
		return "accepted by " + v.Status.Accepted.By
	}
	return ""
}

// action says what the verdict recommended and whether it ran:
// "rollback-canary (done by system:analysis)", "rollback (waits for a
// person)", or "-".
func (v verdictView) action() string {
	switch {
	case v.Spec.Action == "":
		return "-"
	case v.Status.Executed != nil:
		return fmt.Sprintf("%s (done by %s)", v.Status.Executed.Action, v.Status.Executed.By)
	case !v.Spec.Automatic && v.decision() == "":
		return v.Spec.Action + " (waits for a person)"
	}
	return v.Spec.Action
}

func (a *app) verdictListCommand() *cobra.Command {
	var app, env string
	cmd := &cobra.Command{
		Use:     "list [--app APP] [--env ENV]",
		Short:   "List verdicts with their outcome and who decided on them",
		Example: "  airlock verdict list --app shop --env prod",
		Args:    args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML, formatName)
	cmd.Flags().StringVar(&app, "app", "", "only this application's verdicts")
	cmd.Flags().StringVar(&env, "env", "", "only verdicts in this environment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var sel []string
		if app != "" {
			sel = append(sel, "app="+app)
		}
		if env != "" {
			sel = append(sel, "environment="+env)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		objs, err := c.ListVerdicts(cmd.Context(), strings.Join(sel, ","))
		if err != nil {
			return err
		}
		if *output != formatTable || len(objs) == 0 {
			return a.printObjects(*output, objs, true)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tAPP\tENV\tVERSION\tSUBJECT\tOUTCOME\tACTION\tJUDGE\tDECISION\tAGE")
		now := a.now()
		for _, o := range objs {
			v, err := decodeVerdict(o)
			if err != nil {
				return err
			}
			outcome := v.Spec.Outcome
			if ov := v.Status.Override; ov != nil {
				outcome = ov.Outcome + " (was " + v.Spec.Outcome + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Metadata.Name, v.Spec.App, v.Spec.Environment, orNone(v.Spec.Version),
				v.Spec.Subject.Kind+"/"+v.Spec.Subject.Name, outcome, v.action(), v.Spec.Judge, orNone(v.decision()), age(o.Metadata.CreatedAt, now))
		}
		return tw.Flush()
	}
	return cmd
}

func (a *app) verdictShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show VERDICT",
		Short:   "Show a verdict whole: its explanation, each signal, the action and who decided",
		Example: "  airlock verdict show shop.prod.3.1.1",
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.Get(cmd.Context(), "verdicts", argv[0])
		if err != nil {
			return err
		}
		if *output != formatTable {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		v, err := decodeVerdict(obj)
		if err != nil {
			return err
		}
		w := a.stdout
		outcome := strings.ToUpper(v.Spec.Outcome)
		if ov := v.Status.Override; ov != nil {
			outcome = strings.ToUpper(ov.Outcome) + " (was " + outcome + ")"
		}
		fmt.Fprintf(w, "verdict/%s  %s  %s %s in %s\n", obj.Metadata.Name, outcome, v.Spec.App, orNone(v.Spec.Version), v.Spec.Environment)
		fmt.Fprintf(w, "  subject     %s/%s, step %d\n", v.Spec.Subject.Kind, v.Spec.Subject.Name, v.Spec.Step+1)
		fmt.Fprintf(w, "  summary     %s\n", v.Spec.Summary)
		score := "-"
		if v.Spec.Score != nil {
			score = fmt.Sprintf("%.1f", *v.Spec.Score)
		}
		fmt.Fprintf(w, "  confidence  %.1f%%   score %s\n", 100*v.Spec.Confidence, score)
		fmt.Fprintf(w, "  action      %s\n", v.action())
		fmt.Fprintf(w, "  decision    %s\n", orNone(v.decision()))
		fmt.Fprintf(w, "  judge       %s, %s ago\n", v.Spec.Judge, age(obj.Metadata.CreatedAt, a.now()))
		if len(v.Spec.Signals) > 0 {
			fmt.Fprintln(w, "  signals:")
			tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			for _, sg := range v.Spec.Signals {
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", sg.Name, sg.Outcome, sg.Detail)
			}
			tw.Flush()
		}
		if len(v.Spec.Reasons) > 0 {
			fmt.Fprintln(w, "  reasons:")
			for _, r := range v.Spec.Reasons {
				fmt.Fprintf(w, "    - %s\n", r)
			}
		}
		return nil
	}
	return cmd
}

func (a *app) verdictDecideCommand(decision string) *cobra.Command {
	var reason, outcome string
	cmd := &cobra.Command{
		Use:   decision + " VERDICT --reason TEXT",
		Short: map[string]string{"accept": "Agree with a verdict as its judge made it", "override": "Replace a verdict's outcome"}[decision],
		Long: `Record your decision on a verdict of the analysis. accept says you agree
with the verdict and its recommended action; override replaces its outcome
(--outcome pass, fail or inconclusive) for everything that reads it, such as
a flag release plan waiting on a fail verdict. When a rollout is paused
waiting on the verdict (its action is not automatic in the environment),
accept carries the action out (e.g. rolls the canary back), an override
to pass lets the step go on, to fail rolls the canary back, and to
inconclusive leaves it paused. A verdict takes one decision,
its judge may not decide on it, and you need an approver's role for its
environment. Both are audited with your reason; overrides are counted per
signal (airlock verdict overrides) so false-alarm rates are visible.

Exit codes: 0 recorded; 3 refused (already decided, your own verdict, not
allowed); 1 error; 2 usage.`,
		Example: map[string]string{
			"accept":   "  airlock verdict accept shop-prod-7 --reason 'checkout errors are real; roll back'",
			"override": "  airlock verdict override shop-prod-7 --outcome pass --reason 'load test traffic, not users'",
		}[decision],
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	if decision == "override" {
		cmd.Flags().StringVar(&outcome, "outcome", "", "the outcome that counts instead: pass, fail or inconclusive (required)")
	}
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why you %s the verdict", decision)
		}
		if decision == "override" && outcome != "pass" && outcome != "fail" && outcome != "inconclusive" {
			return usagef("--outcome is required: pass, fail or inconclusive")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		var obj *resource.Object
		if decision == "override" {
			obj, err = c.OverrideVerdict(cmd.Context(), argv[0], outcome, reason)
		} else {
			obj, err = c.AcceptVerdict(cmd.Context(), argv[0], reason)
		}
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		v, err := decodeVerdict(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "verdict/%s %s\n", obj.Metadata.Name, v.decision())
		return nil
	}
	return cmd
}

func (a *app) verdictOverridesCommand() *cobra.Command {
	var app, env string
	cmd := &cobra.Command{
		Use:   "overrides [--app APP] [--env ENV]",
		Short: "How often people overrode verdicts against each signal",
		Long: `For each signal (error-rate, latency-p99, a log pattern, ...): the verdicts
that carried it, how many a person overrode to an outcome other than the
signal's own, and the rate. A signal that fails verdicts people keep
overriding to pass raises false alarms: loosen its threshold. Verdicts
without per-signal results count under their judge.`,
		Example: "  airlock verdict overrides --env prod",
		Args:    args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&app, "app", "", "only this application's verdicts")
	cmd.Flags().StringVar(&env, "env", "", "only verdicts in this environment")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := c.VerdictOverrides(cmd.Context(), app, env)
		if err != nil {
			return err
		}
		if *output != formatTable {
			if items == nil {
				items = []client.SignalCount{}
			}
			return writeData(a.stdout, *output, struct {
				Items []client.SignalCount `json:"items"`
			}{items})
		}
		if len(items) == 0 {
			fmt.Fprintln(a.stderr, "No verdicts found.")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "SIGNAL\tVERDICTS\tOVERRIDDEN\tRATE")
		for _, it := range items {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\n", it.Signal, it.Verdicts, it.Overridden, 100*it.Rate)
		}
		return tw.Flush()
	}
	return cmd
}
