package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

// Polling of promote --wait: every pollBase at first, backing off to
// pollMax.
const (
	defaultPollBase = time.Second
	pollBackoff     = 5 // pollMax = pollBackoff * pollBase
)

func (a *app) promoteCommand() *cobra.Command {
	var (
		to, timeoutArg, incident, reason string
		wait, emergency                  bool
		rollbackPlan                     string
	)
	cmd := &cobra.Command{
		Use:   "promote APP VERSION --to ENV [--wait [--timeout DURATION]] [--emergency --incident ID --reason TEXT]",
		Short: "Promote a release into an environment, through its gates",
		Long: `Ask to promote a release into the next environment of its pipeline. Every
gate of the transition is evaluated against the release's evidence and the
result is recorded on the Promotion (airlock get promotion NAME) and in the
audit log. The release must have completed the previous stage: there is no
skipping, and there is no way to skip a gate.

The table shows every gate, what it judged and, for a gate that failed or
waits for evidence, what would satisfy it. Running the command again
re-evaluates the same promotion.

--wait waits until the promotion ends: new evidence re-evaluates a pending
promotion, so CI can attach reports while a promote --wait runs.

--emergency, with an --incident reference and a --reason, reduces only the
approval chain: the security gates (SAST, SCA, container scan, signature)
still run and still block. It opens a Review due 24 hours later (airlock
review list).

Exit codes: 0 promoted; 3 blocked by a gate, or not allowed yet (a gate
waits for evidence, or --wait timed out); 1 error; 2 usage.`,
		Example: `  airlock promote shop 1.4.0 --to test
  airlock promote shop 1.4.0 --to staging --wait --timeout 1h
  airlock promote shop 1.4.1 --to prod --emergency --incident INC-4711 --reason "checkout down"`,
		Args: args(cobra.ExactArgs(2)),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "environment to promote into (required)")
	f.BoolVar(&wait, "wait", false, "wait until the promotion succeeds or is blocked")
	f.StringVar(&timeoutArg, "timeout", "30m", "with --wait: how long to wait for evidence (e.g. 30m, 2h)")
	f.BoolVar(&emergency, "emergency", false, "emergency promotion: reduced approvals, security gates still block; needs --incident and --reason")
	f.StringVar(&incident, "incident", "", "with --emergency: the incident reference (e.g. INC-4711)")
	f.StringVar(&reason, "reason", "", "with --emergency: why this cannot wait")
	f.StringVar(&rollbackPlan, "rollback-plan", "", "this deployment's written rollback plan (default: the application's for the environment, or airlock rollback)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if to == "" {
			return usagef("--to is required: the environment to promote into")
		}
		req := client.PromotionRequest{App: argv[0], Version: argv[1], To: to, RollbackPlan: rollbackPlan}
		switch {
		case emergency && (strings.TrimSpace(incident) == "" || strings.TrimSpace(reason) == ""):
			return usagef("--emergency needs --incident ID and --reason TEXT: an emergency promotion must be accountable")
		case !emergency && (incident != "" || reason != ""):
			return usagef("--incident and --reason go with --emergency")
		case emergency:
			req.Emergency = &client.Emergency{Incident: incident, Reason: reason}
		}
		timeout, err := parseDuration(timeoutArg)
		if err != nil || timeout <= 0 {
			return usagef("--timeout %q: write a positive duration, e.g. 30m or 2h", timeoutArg)
		}
		if cmd.Flags().Changed("timeout") && !wait {
			return usagef("--timeout goes with --wait")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		obj, err := c.Promote(ctx, req)
		if client.IsStatus(err, http.StatusConflict) {
			// Already promoted: when it was this very promotion (e.g. new
			// evidence re-evaluated it), the release is where it was asked
			// to be, which a CI job re-run must not call an error.
			done, gerr := c.Promotion(ctx, client.PromotionName(req.App, req.Version, req.To))
			if gerr != nil {
				return err
			}
			if _, st, derr := client.DecodePromotion(done); derr != nil || st.Phase != client.PhaseSucceeded {
				return err
			}
			fmt.Fprintf(a.stderr, "promotion/%s had already succeeded\n", done.Metadata.Name)
			obj = done
		} else if err != nil {
			return err
		}
		_, st, err := client.DecodePromotion(obj)
		if err != nil {
			return err
		}
		timedOut := false
		if wait && (st.Phase == client.PhasePending || st.Phase == client.PhaseDeploying) {
			obj, st, timedOut, err = a.waitPromotion(ctx, c, obj, timeout)
			if err != nil {
				return err
			}
		}
		return a.reportPromotion(ctx, c, *output, obj, st, wait, timedOut, timeout)
	}
	return cmd
}

// waitPromotion polls a pending promotion until it leaves Pending or
// timeout passes. It returns the last state read and whether it timed out.
func (a *app) waitPromotion(ctx context.Context, c *client.Client, obj *resource.Object, timeout time.Duration) (*resource.Object, *client.PromotionStatus, bool, error) {
	name := obj.Metadata.Name
	_, st, err := client.DecodePromotion(obj)
	if err != nil {
		return nil, nil, false, err
	}
	base := a.pollBase
	if base <= 0 {
		base = defaultPollBase
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintf(a.stderr, "waiting up to %s for promotion/%s: %s\n", timeout, name, orNone(st.Message))
	interval := base
	for {
		t := time.NewTimer(interval)
		select {
		case <-wctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return nil, nil, false, ctx.Err()
			}
			return obj, st, true, nil
		case <-t.C:
		}
		interval = min(interval+interval/2, pollBackoff*base)
		next, err := c.Promotion(wctx, name)
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return obj, st, true, nil
			}
			return nil, nil, false, err
		}
		_, nst, err := client.DecodePromotion(next)
		if err != nil {
			return nil, nil, false, err
		}
		obj, st = next, nst
		if st.Phase != client.PhasePending && st.Phase != client.PhaseDeploying {
			return obj, st, false, nil
		}
	}
}

// reportPromotion prints the outcome of a promotion and returns the error
// that gives the exit code: nil when it succeeded, exit 3 otherwise.
func (a *app) reportPromotion(ctx context.Context, c *client.Client, output string, obj *resource.Object, st *client.PromotionStatus, wait, timedOut bool, timeout time.Duration) error {
	spec, _, err := client.DecodePromotion(obj)
	if err != nil {
		return err
	}
	notes := a.stdout
	if output != formatTable {
		if err := a.printObjects(output, []*resource.Object{obj}, false); err != nil {
			return err
		}
		notes = a.stderr
	} else {
		if err := printGates(a.stdout, st.Gates); err != nil {
			return err
		}
	}
	if st.Review != "" {
		a.printReviewNotice(ctx, c, notes, st.Review)
	}
	if spec.RollbackPlan != "" && (st.Phase == client.PhaseDeploying || st.Phase == client.PhaseSucceeded) {
		fmt.Fprintf(notes, "rollback plan: %s\n", spec.RollbackPlan)
	}
	msg := st.Message
	switch st.Phase {
	case client.PhaseSucceeded:
		fmt.Fprintf(notes, "promotion/%s succeeded: %s %s is promoted to %s\n", obj.Metadata.Name, spec.App, spec.Version, spec.To)
		return nil
	case client.PhaseDeploying:
		fmt.Fprintf(notes, "promotion/%s passed its gates: %s\n", obj.Metadata.Name, msg)
		if timedOut {
			fmt.Fprintf(a.stderr, "timed out after %s waiting for the rollout of promotion/%s\n", timeout, obj.Metadata.Name)
			return &exitError{ExitBlocked}
		}
		return nil
	case client.PhaseFailed:
		fmt.Fprintf(a.stderr, "failed: promotion/%s: %s (fix the cause and promote again)\n", obj.Metadata.Name, msg)
		return &exitError{ExitError}
	case client.PhaseBlocked:
		fmt.Fprintf(a.stderr, "blocked: promotion/%s: %s\n", obj.Metadata.Name, orDefault(msg, "a gate failed"))
	case client.PhasePending:
		switch {
		case timedOut:
			fmt.Fprintf(a.stderr, "not allowed yet: timed out after %s waiting for evidence for promotion/%s: %s\n", timeout, obj.Metadata.Name, orDefault(msg, "gates are pending"))
		case wait:
			fmt.Fprintf(a.stderr, "not allowed yet: promotion/%s: %s\n", obj.Metadata.Name, orDefault(msg, "gates are pending"))
		default:
			fmt.Fprintf(a.stderr, "not allowed yet: promotion/%s: %s (attach the evidence and run again, or use --wait)\n", obj.Metadata.Name, orDefault(msg, "gates wait for evidence"))
		}
	default:
		fmt.Fprintf(a.stderr, "promotion/%s is %s: %s\n", obj.Metadata.Name, orNone(st.Phase), msg)
	}
	return &exitError{ExitBlocked}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// printReviewNotice says loudly that an emergency promotion opened a
// review, and when it is due.
func (a *app) printReviewNotice(ctx context.Context, c *client.Client, w io.Writer, name string) {
	due := ""
	if obj, err := c.Get(ctx, "reviews", name); err == nil {
		var rs client.ReviewSpec
		if json.Unmarshal(obj.Spec, &rs) == nil && !rs.DueAt.IsZero() {
			due = " due at " + rs.DueAt.UTC().Format(time.RFC3339)
		}
	}
	fmt.Fprintf(w, "EMERGENCY: this promotion opened review %s%s; it is flagged overdue after that (airlock review list)\n", name, due)
}

// printGates prints the gate table: every gate, its status, the first
// reason, and for a gate that did not pass what would satisfy it.
func printGates(w io.Writer, gates []client.GateResult) error {
	if len(gates) == 0 {
		fmt.Fprintln(w, "no gates on this transition")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "GATE\tTYPE\tSTATUS\tDETAIL")
	for _, g := range gates {
		detail := ""
		if len(g.Reasons) > 0 {
			detail = g.Reasons[0]
		}
		status := g.Status
		if g.Security && g.Status != client.GatePass {
			status += " (security)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Gate, g.Type, status, orNone(detail))
		if g.Fix != "" && (g.Status == client.GateFail || g.Status == client.GatePending) {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", g.Fix)
		}
	}
	return tw.Flush()
}

// gateCount renders how many gates passed, e.g. "5/7 pass".
func gateCount(m map[string]any, _ time.Time) string {
	list, ok := lookup(m, "status.gates").([]any)
	if !ok {
		return ""
	}
	pass := 0
	for _, g := range list {
		if gm, ok := g.(map[string]any); ok && (gm["status"] == client.GatePass) {
			pass++
		}
	}
	if len(list) == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d pass", pass, len(list))
}

func emergencyCell(m map[string]any, _ time.Time) string {
	if s := str(lookup(m, "spec.emergency.incident")); s != "" {
		return s
	}
	return "no"
}

var errNoDue = errors.New("no due time")

// reviewDue renders when a review is due, relative to now.
func reviewDue(m map[string]any, now time.Time) string {
	t, err := reviewDueAt(m)
	if err != nil {
		return ""
	}
	if t.After(now) {
		return "in " + humanDuration(t.Sub(now))
	}
	return humanDuration(now.Sub(t)) + " ago"
}

func reviewDueAt(m map[string]any) (time.Time, error) {
	s, _ := lookup(m, "spec.dueAt").(string)
	if s == "" {
		return time.Time{}, errNoDue
	}
	return time.Parse(time.RFC3339Nano, s)
}

// reviewOverdue is loud about a review past its deadline: "OVERDUE 3h".
func reviewOverdue(m map[string]any, now time.Time) string {
	t, err := reviewDueAt(m)
	open := str(lookup(m, "status.phase")) == "Open"
	overdue := open && (lookup(m, "status.overdue") == true || (err == nil && now.After(t)))
	if !overdue {
		return "no"
	}
	if err != nil {
		return "OVERDUE"
	}
	return "OVERDUE " + humanDuration(now.Sub(t))
}
