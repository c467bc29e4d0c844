package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

// flagsGetCommand shows one flag: what it serves and how it got there.
func (a *app) flagsGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get APP.KEY.ENV",
		Short: "Show a flag: its variants, rules, split, state and pending changes",
		Example: `  airlock flags get shop.new-checkout.prod
  airlock flags get shop.new-checkout.prod -o yaml`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.Get(cmd.Context(), "flags", argv[0])
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		changes, err := c.List(cmd.Context(), "flagchanges", "flag="+argv[0])
		if err != nil {
			return err
		}
		return a.describeFlag(a.stdout, obj, changes.Items)
	}
	return cmd
}

func (a *app) describeFlag(w io.Writer, obj *resource.Object, changes []*resource.Object) error {
	m, err := tree(obj)
	if err != nil {
		return err
	}
	get := func(p string) string { return str(lookup(m, p)) }
	fmt.Fprintf(w, "Flag:        %s (revision %d)\n", obj.Metadata.Name, obj.Metadata.Revision)
	fmt.Fprintf(w, "App/env/key: %s / %s / %s\n", get("spec.app"), get("spec.environment"), get("spec.key"))
	if d := get("spec.description"); d != "" {
		fmt.Fprintf(w, "Description: %s\n", d)
	}
	state := "off (kill switch: everyone gets the default variant)"
	if lookup(m, "spec.enabled") == true {
		state = "on"
	}
	fmt.Fprintf(w, "Enabled:     %s\n", state)
	fmt.Fprintf(w, "Type:        %s, default variant %s\n", get("spec.type"), get("spec.defaultVariant"))
	if vs, ok := lookup(m, "spec.variants").(map[string]any); ok {
		names := make([]string, 0, len(vs))
		for n := range vs {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = n + "=" + str(vs[n])
		}
		fmt.Fprintf(w, "Variants:    %s\n", strings.Join(parts, ", "))
	}
	if rules, ok := lookup(m, "spec.targeting").([]any); ok {
		for i, r := range rules {
			rm, _ := r.(map[string]any)
			serves := str(rm["variant"])
			if f := splitText(rm["fractional"]); f != "" {
				serves = f
			}
			fmt.Fprintf(w, "Rule %d:      %s serves %s\n", i+1, str(rm["name"]), serves)
		}
	}
	if f := splitText(lookup(m, "spec.fractional")); f != "" {
		fmt.Fprintf(w, "Split:       %s (by targeting key)\n", f)
	}
	if u := get("status.uniformSince"); u != "" {
		fmt.Fprintf(w, "Uniform:     serves %s to everyone since %s\n", get("status.uniformVariant"), u)
	}
	if l := get("status.lastEvaluated"); l != "" {
		fmt.Fprintf(w, "Evaluated:   last on %s\n", strings.SplitN(l, "T", 2)[0])
	}
	if p := get("status.plan"); p != "" {
		fmt.Fprintf(w, "Plan:        %s\n", p)
	}
	if ch := get("status.change"); ch != "" {
		fmt.Fprintf(w, "Last change: %s\n", ch)
	}
	for _, ch := range changes {
		cm, err := tree(ch)
		if err != nil {
			return err
		}
		phase := str(lookup(cm, "status.phase"))
		if phase != "Pending" && phase != "Approved" {
			continue
		}
		fmt.Fprintf(w, "Waiting:     %s (%s, by %s): %s; %s\n", ch.Metadata.Name, phase, str(lookup(cm, "spec.proposedBy")),
			str(lookup(cm, "spec.summary")), str(lookup(cm, "status.message")))
	}
	return nil
}

// splitText renders a fractional split: "on 25% / off 75%".
func splitText(v any) string {
	list, _ := v.([]any)
	parts := make([]string, 0, len(list))
	for _, s := range list {
		sm, _ := s.(map[string]any)
		parts = append(parts, fmt.Sprintf("%s %s%%", str(sm["variant"]), str(sm["weight"])))
	}
	return strings.Join(parts, " / ")
}

// flagsSetCommand changes a flag's kill switch, default or split.
func (a *app) flagsSetCommand() *cobra.Command {
	var enabled, def, split, reason, incident string
	var clearSplit, emergency bool
	cmd := &cobra.Command{
		Use:   "set APP.KEY.ENV [--enabled=true|false] [--default VARIANT] [--split VARIANT=PCT,...|--clear-split] --reason TEXT [--emergency --incident ID]",
		Short: "Turn a flag's kill switch, or change its default variant or split",
		Long: `Change a flag. The change is recorded as a flag change (fch-YYYYMMDD-NNN)
holding the flag before and after, and audited with what it changed.

In an environment whose flag changes need approval (every production-tier
environment: the approvals of the application's transition into it, or one
tech-lead, unless the environment's spec.flagChanges says otherwise) the
change waits for approval (airlock flags approve CHANGE); elsewhere it
applies at once. A closed deployment window holds changes back.

--emergency --incident ID turns the kill switch (--enabled only) at once,
whatever the approvals and windows, under an open incident, and leaves a
post-emergency review due in 24 hours (airlock review complete).

Exit codes: 0 applied or proposed (the output says which); 3 refused (a
closed window, no open incident, not allowed); 1 error; 2 usage.`,
		Example: `  airlock flags set shop.new-checkout.prod --split on=50,off=50 --reason "widen the rollout"
  airlock flags set shop.new-checkout.prod --enabled=false --emergency --incident inc-20261127-001 --reason "checkout errors"`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatName)
	cmd.Flags().StringVar(&enabled, "enabled", "", "true turns the flag on, false is the kill switch (everyone gets the default variant)")
	cmd.Flags().StringVar(&def, "default", "", "the default variant")
	cmd.Flags().StringVar(&split, "split", "", "the split by targeting key, VARIANT=PERCENT,... summing to 100 (e.g. on=10,off=90)")
	cmd.Flags().BoolVar(&clearSplit, "clear-split", false, "remove the split (everyone not matched by a rule gets the default)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the change and the audit log)")
	cmd.Flags().BoolVar(&emergency, "emergency", false, "apply at once under --incident, leaving a review (kill switch only)")
	cmd.Flags().StringVar(&incident, "incident", "", "the open incident an emergency answers")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		req := client.FlagSet{DefaultVariant: def, ClearFractional: clearSplit, Reason: reason}
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why the flag changes")
		}
		if enabled != "" {
			b, err := strconv.ParseBool(enabled)
			if err != nil {
				return usagef("--enabled takes true or false, got %q", enabled)
			}
			req.Enabled = &b
		}
		if split != "" {
			s, err := parseSplit(split)
			if err != nil {
				return err
			}
			req.Fractional = s
		}
		switch {
		case emergency && incident == "":
			return usagef("--emergency needs --incident ID: the open incident it answers")
		case !emergency && incident != "":
			return usagef("--incident goes with --emergency")
		case emergency:
			req.Emergency = &struct {
				Incident string `json:"incident"`
			}{Incident: incident}
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		res, err := c.SetFlag(cmd.Context(), argv[0], req)
		if err != nil {
			return err
		}
		switch *output {
		case formatJSON:
			return writeJSON(a.stdout, res)
		case formatName:
			fmt.Fprintf(a.stdout, "flagchange/%s\n", res.Change)
			return nil
		}
		switch res.Phase {
		case "Applied":
			fmt.Fprintf(a.stdout, "flag %s changed (%s): %s\n", res.Flag, res.Change, res.Summary)
		default:
			fmt.Fprintf(a.stdout, "flag %s: change %s proposed (%s); it %s\n", res.Flag, res.Change, res.Summary, res.Message)
			fmt.Fprintf(a.stdout, "approve it with: airlock flags approve %s --reason TEXT\n", res.Change)
			return nil
		}
		if res.Review != "" {
			fmt.Fprintf(a.stdout, "emergency: review %s is due in 24h (airlock review complete %s --outcome accepted|follow-up|reverted --reason TEXT)\n", res.Review, res.Review)
		}
		return nil
	}
	return cmd
}

// parseSplit reads VARIANT=PERCENT,... .
func parseSplit(s string) ([]client.FlagSplit, error) {
	var out []client.FlagSplit
	for _, part := range strings.Split(s, ",") {
		v, p, ok := strings.Cut(strings.TrimSpace(part), "=")
		w, err := strconv.ParseFloat(strings.TrimSuffix(p, "%"), 64)
		if !ok || v == "" || err != nil {
			return nil, usagef("--split takes VARIANT=PERCENT,... (e.g. on=10,off=90), got %q", part)
		}
		out = append(out, client.FlagSplit{Variant: v, Weight: w})
	}
	return out, nil
}

// flagsChangeCommand approves, rejects or withdraws a flag change.
func (a *app) flagsChangeCommand(command, short, long string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: command + " CHANGE --reason TEXT",
		Example: "  airlock flags " + command + " fch-20261127-001 --reason 'split reviewed'\n" +
			"  airlock flags " + command + " $(airlock get flagchanges -l flag=shop.new-checkout.prod,phase=Pending -o name) --reason 'split reviewed'",
		Short: short,
		Long:  long,
		Args:  args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why you %s", command)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(argv[0], "flagchange/") // as -o name prints it
		obj, err := c.FlagChangeCommand(cmd.Context(), name, command, reason)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		m, err := tree(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "flag change %s of %s is %s", obj.Metadata.Name, str(lookup(m, "spec.flag")), str(lookup(m, "status.phase")))
		if msg := str(lookup(m, "status.message")); msg != "" {
			fmt.Fprintf(a.stdout, ": %s", msg)
		}
		fmt.Fprintln(a.stdout)
		return nil
	}
	return cmd
}

func (a *app) flagChangeCommands() []*cobra.Command {
	list := a.listCommand("List flag changes: proposed, applied, rejected, superseded, withdrawn", "", func(c *client.Client, ctx context.Context) ([]*resource.Object, error) {
		l, err := c.List(ctx, "flagchanges", "")
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	})
	list.Use = "changes"
	return []*cobra.Command{
		a.flagsGetCommand(),
		a.flagsSetCommand(),
		list,
		a.flagsChangeCommand("approve", "Approve a pending flag change", `Approve a flag change. The server records the roles you hold for its
environment; only the roles its policy requires count, and whoever proposed
the change may not approve it. The last approval needed applies the change
at once, or, while a deployment window is closed, when it opens.

Exit codes: 0 recorded; 3 refused (your own change, no required role); 1
error (e.g. a second vote); 2 usage.`),
		a.flagsChangeCommand("reject", "Reject a pending flag change (final)", `Reject a flag change; a rejection by a holder of a required role ends it.`),
		a.flagsChangeCommand("withdraw", "Withdraw a flag change that has not applied", `Withdraw a pending or approved flag change.`),
	}
}
