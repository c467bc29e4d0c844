package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/resource"
)

// flagsPlanCommand is "airlock flags plan": follow and steer progressive
// release plans (FlagPlan objects, declared with apply).
func (a *app) flagsPlanCommand() *cobra.Command {
	return group("plan", "Follow and steer progressive release plans of flags (FlagPlan, declared with apply)",
		a.flagsPlanGetCommand(),
		a.flagsPlanSteerCommand(plan.CmdAdvance, "Apply the plan's next step now, whatever its schedule"),
		a.flagsPlanSteerCommand(plan.CmdPause, "Hold the plan at its current step"),
		a.flagsPlanSteerCommand(plan.CmdResume, "Go on from a pause; verdicts count again from now"),
		a.flagsPlanSteerCommand(plan.CmdCancel, "End the plan for good; the flag stays as the plan left it"),
	)
}

func (a *app) flagsPlanGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get NAME [-o json|yaml]",
		Short:   "Show a plan: phase, step, next advance and history",
		Example: `  airlock flags plan get shop.new-checkout.prod`,
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.FlagPlan(cmd.Context(), argv[0])
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		return printFlagPlan(a.stdout, obj, a.now())
	}
	return cmd
}

func (a *app) flagsPlanSteerCommand(verb, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   verb + " NAME --reason TEXT [-o json|yaml]",
		Short: short,
		Long: short + `.

Exit codes: 0 done; 3 refused (not allowed, or not possible as the plan
stands: advancing a paused plan, a closed deployment window, ...);
1 error; 2 usage.`,
		Example: fmt.Sprintf(`  airlock flags plan %s shop.new-checkout.prod --reason "checkout errors at 0.1%%, as before"`, verb),
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.FlagPlanCommand(cmd.Context(), argv[0], verb, reason)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		_, st, err := plan.Decode(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "flagplan/%s: %s at step %d: %s\n", obj.Metadata.Name, st.PhaseOf(), st.Step, st.Message)
		return nil
	}
	return cmd
}

// printFlagPlan prints a plan for people: what it releases, its steps
// (marking the current one), when it advances, and what happened.
func printFlagPlan(w io.Writer, obj *resource.Object, now time.Time) error {
	spec, st, err := plan.Decode(obj)
	if err != nil {
		return err
	}
	phase := st.PhaseOf()
	fmt.Fprintf(w, "flagplan/%s  %s\n", obj.Metadata.Name, phase)
	fmt.Fprintf(w, "  flag       %s, releasing variant %q\n", spec.Flag, spec.Variant)
	started := st.StepStartedAt != nil
	for i := range spec.Steps {
		mark := " "
		switch {
		case started && i < st.Step:
			mark = "✓"
		case started && i == st.Step:
			mark = "▶"
		}
		label := "          "
		if i == 0 {
			label = "steps     "
		}
		fmt.Fprintf(w, "  %s %s %d  %s\n", label, mark, i, spec.Describe(i))
	}
	switch {
	case phase.Final() || phase == plan.Paused:
		fmt.Fprintf(w, "  next       none (%s)\n", strings.ToLower(string(phase)))
	case st.NextAt != nil:
		fmt.Fprintf(w, "  next       step %d at %s (in %s)\n", st.Step+1, st.NextAt.UTC().Format("2006-01-02 15:04 MST"), humanDuration(st.NextAt.Sub(now)))
	case phase == plan.Pending:
		fmt.Fprintf(w, "  next       step 0 as soon as the controller runs\n")
	default:
		fmt.Fprintf(w, "  next       by hand: airlock flags plan advance %s --reason TEXT\n", obj.Metadata.Name)
	}
	verdicts := "pause the plan"
	if !spec.PausesOnVerdict() {
		verdicts = "are ignored (pauseOnVerdict: false)"
	}
	fmt.Fprintf(w, "  verdicts   fail verdicts for the flag's application and environment %s\n", verdicts)
	if st.Message != "" {
		fmt.Fprintf(w, "  message    %s\n", st.Message)
	}
	if len(st.History) > 0 {
		fmt.Fprintln(w, "  history:")
		for _, e := range st.History {
			fmt.Fprintf(w, "    %s  %s ago  step %d  %s  %s\n", e.At.UTC().Format("2006-01-02 15:04"), humanDuration(now.Sub(e.At)), e.Step, e.Actor, e.Message)
		}
	}
	return nil
}
