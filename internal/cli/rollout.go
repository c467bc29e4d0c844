package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
)

func (a *app) rolloutCommand() *cobra.Command {
	c := group("rollout", "Follow and steer the rollout of an application in an environment",
		a.rolloutGetCommand(),
		a.rolloutSteerCommand("pause", "Hold the rollout at its current weight", false),
		a.rolloutSteerCommand("resume", "Go on from a pause (or a manual canary step)", false),
		a.rolloutSteerCommand("promote", "Skip the remaining steps: all traffic to the new version", false),
		a.rolloutSteerCommand("abort", "Stop the rollout: traffic back on the stable version, the new one stopped", true),
	)
	c.Aliases = []string{"ro"}
	return c
}

// rolloutFlags adds --env (required) to a command.
func rolloutEnv(cmd *cobra.Command) *string {
	env := cmd.Flags().String("env", "", "the environment (required)")
	return env
}

func (a *app) rolloutGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get APP --env ENV",
		Short: "Show the current rollout: phase, step, weights, versions and what happened",
		Args:  args(cobra.ExactArgs(1)),
	}
	env := rolloutEnv(cmd)
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if *env == "" {
			return usagef("--env is required")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.CurrentRollout(cmd.Context(), argv[0], *env)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		return printRollout(a.stdout, obj, time.Now())
	}
	return cmd
}

func (a *app) rolloutSteerCommand(verb, short string, needReason bool) *cobra.Command {
	var reason string
	use := verb + " APP --env ENV"
	if needReason {
		use += " --reason TEXT"
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: args(cobra.ExactArgs(1)),
		Long: short + `.

Exit codes: 0 done; 3 refused (not allowed, the rollout already ended);
1 error; 2 usage.`}
	env := rolloutEnv(cmd)
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)"+map[bool]string{true: "; required", false: ""}[needReason])
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if *env == "" {
			return usagef("--env is required")
		}
		if needReason && strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why")
		}
		return a.steer(cmd, argv[0], *env, verb, reason, *output)
	}
	return cmd
}

func (a *app) steer(cmd *cobra.Command, app, env, verb, reason, output string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	obj, err := c.RolloutCommand(cmd.Context(), app, env, verb, reason)
	if err != nil {
		return err
	}
	if output != "" {
		return a.printObjects(output, []*resource.Object{obj}, false)
	}
	fmt.Fprintf(a.stdout, "rollout/%s: %s requested\n", obj.Metadata.Name, verb)
	return nil
}

func (a *app) rollbackCommand() *cobra.Command {
	var reason, env string
	var wait, rehearsal bool
	cmd := &cobra.Command{
		Use:   "rollback APP --env ENV --reason TEXT [--wait] | rollback APP --env ENV --rehearsal",
		Short: "Put the previous version back in an environment",
		Long: `Restore the version that served before the current one. During a rollout,
or after a blue-green switch while the old version still runs (its rollback
window), traffic goes back at once. Later, a new rollout brings the previous
version back beside the current one and switches to it. Audited with your
reason.

--rehearsal rehearses instead, in a non-production environment: it rolls the
release serving there back to the previous version, checks that version
serves through the router, restores the release, and records the result as
rollback evidence on the release, which the rollbackTested gate requires
before production.

Exit codes: 0 done (or the rehearsal passed); 3 refused (nothing to roll
back to, not allowed, production); 1 error or a failed rehearsal; 2 usage.`,
		Example: `  airlock rollback shop --env prod --reason "checkout error rate 8% since 1.5.0"`,
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the previous version serves again (at most 10m)")
	cmd.Flags().BoolVar(&rehearsal, "rehearsal", false, "rehearse: roll back, check, restore, and record the result on the release")
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		switch {
		case env == "":
			return usagef("--env is required")
		case rehearsal && wait:
			return usagef("--rehearsal always waits; leave out --wait")
		case rehearsal:
			return a.rehearse(cmd, argv[0], env, reason)
		case strings.TrimSpace(reason) == "":
			return usagef("--reason is required: say why you roll back")
		}
		if err := a.steer(cmd, argv[0], env, "rollback", reason, *output); err != nil || !wait {
			return err
		}
		return a.waitRollout(cmd, argv[0], env, 10*time.Minute)
	}
	return cmd
}

func (a *app) rehearse(cmd *cobra.Command, app, env, reason string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "rehearsing the rollback of %s in %s (back to the previous version, then forward again)...\n", app, env)
	reh, failure, err := c.Rehearse(cmd.Context(), app, env, reason)
	if err != nil {
		return err
	}
	for _, s := range reh.Steps {
		fmt.Fprintf(a.stdout, "  %s\n", s)
	}
	if !reh.Passed {
		fmt.Fprintf(a.stderr, "rollback rehearsal of %s %s in %s FAILED: %s (recorded on the release)\n", app, reh.Version, env, failure)
		return &exitError{ExitError}
	}
	fmt.Fprintf(a.stdout, "rollback rehearsal of %s %s in %s passed: back to %s in %d ms, restored in %d ms (recorded on the release)\n",
		app, reh.Version, env, reh.Previous, reh.RollbackMs, reh.RestoreMs)
	return nil
}

// waitRollout polls the current rollout of app in env until it ends, and
// reports how: exit 0 when the version it brings serves, 1 otherwise.
func (a *app) waitRollout(cmd *cobra.Command, app, env string, timeout time.Duration) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		obj, err := c.CurrentRollout(cmd.Context(), app, env)
		if err != nil {
			return err
		}
		_, st, err := rollout.Decode(obj)
		if err != nil {
			return err
		}
		pending := st.RollbackReason != "" || st.AbortRequested != "" || st.Phase == ""
		switch {
		case pending:
		case st.Phase == rollout.Succeeded, st.Phase == rollout.RolledBack:
			fmt.Fprintf(a.stdout, "rollout/%s %s: %s\n", obj.Metadata.Name, st.Phase, st.Message)
			return nil
		case st.Phase == rollout.Failed, st.Phase == rollout.Aborted:
			fmt.Fprintf(a.stderr, "rollout/%s %s: %s\n", obj.Metadata.Name, st.Phase, st.Message)
			return &exitError{ExitError}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout/%s is still %s after %s", obj.Metadata.Name, st.Phase, timeout)
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (a *app) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [APP]",
		Short: "What runs where: serving version, candidate, weights and health",
		Long: `For every application (or APP) and environment with a rollout: the phase of
the current rollout, the version serving, the candidate during a rollout
and its share of traffic, healthy instances per version as the router sees
them, and the router's address.`,
		Args: args(cobra.MaximumNArgs(1)),
	}
	output := outputFlag(cmd, formatTable, formatTable, formatJSON)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		app := ""
		if len(argv) == 1 {
			app = argv[0]
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		rows, err := c.Status(cmd.Context(), app)
		if err != nil {
			return err
		}
		if *output == formatJSON {
			return writeJSON(a.stdout, map[string]any{"items": rows})
		}
		if len(rows) == 0 {
			fmt.Fprintln(a.stderr, "Nothing runs yet: a promotion into an environment where the application declares settings starts a rollout.")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "APP\tENV\tPHASE\tSERVING\tCANDIDATE\tWEIGHT\tHEALTHY\tADDRESS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d%%\t%s\t%s\n", r.App, r.Environment, r.Phase, dash(r.Serving), dash(r.Candidate), r.Weight, healthCell(r.Healthy, r.Replicas), dash(r.Address))
		}
		return tw.Flush()
	}
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func healthCell(h map[string]int, replicas int) string {
	if len(h) == 0 {
		return "-"
	}
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, fmt.Sprintf("%s %d/%d", v, h[v], replicas))
	}
	return strings.Join(parts, ", ")
}

// printRollout writes a rollout for people.
func printRollout(w io.Writer, obj *resource.Object, now time.Time) error {
	spec, st, err := rollout.Decode(obj)
	if err != nil {
		return err
	}
	stable := "none (first deploy)"
	if spec.Stable != nil {
		stable = spec.Stable.Version
	}
	fmt.Fprintf(w, "rollout/%s  %s  %s\n", obj.Metadata.Name, dash(string(st.Phase)), spec.Strategy.Type)
	fmt.Fprintf(w, "  candidate  %s (%s)\n  stable     %s\n", spec.Candidate.Version, spec.Candidate.Digest, stable)
	step := ""
	if spec.Strategy.Type == "canary" && len(spec.Strategy.Steps) > 0 {
		step = fmt.Sprintf(" (step %d of %d)", min(st.Step+1, len(spec.Strategy.Steps)), len(spec.Strategy.Steps))
	}
	fmt.Fprintf(w, "  weight     %d%% on %s%s, %d instances\n", st.Weight, spec.Candidate.Version, step, spec.Replicas)
	if spec.Rollback {
		fmt.Fprintf(w, "  rollback   %s\n", spec.Reason)
	}
	if spec.Promotion != "" {
		fmt.Fprintf(w, "  promotion  %s\n", spec.Promotion)
	}
	if spec.Analysis != nil {
		fmt.Fprintf(w, "  analysis   %s\n", analysisLine(spec, st))
	}
	if st.Message != "" {
		fmt.Fprintf(w, "  message    %s\n", st.Message)
	}
	if len(st.Events) > 0 {
		fmt.Fprintln(w, "  events:")
		for _, e := range st.Events {
			fmt.Fprintf(w, "    %s ago  %s\n", humanDuration(now.Sub(e.At)), e.Message)
		}
	}
	return nil
}

// analysisLine says where the analysis of a rollout stands.
func analysisLine(spec rollout.Spec, st rollout.Status) string {
	tmpl := spec.Analysis.Template
	if tmpl == "" {
		tmpl = "default"
	}
	a := st.Analysis
	switch {
	case a == nil:
		return "template " + tmpl + "; no verdict yet"
	case a.Awaiting != "":
		return fmt.Sprintf("template %s; waits for a decision on verdict %s (airlock verdict accept|override %s --reason TEXT)", tmpl, a.Awaiting, a.Awaiting)
	case a.ExtendedUntil != nil:
		return fmt.Sprintf("template %s; soak extended until %s by verdict %s", tmpl, a.ExtendedUntil.UTC().Format(time.RFC3339), a.Verdict)
	}
	return fmt.Sprintf("template %s; last verdict %s (%s)", tmpl, a.Verdict, a.Action)
}
