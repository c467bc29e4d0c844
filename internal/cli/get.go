package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) getCommand() *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show resources",
		Long: `Show one resource, or every resource of a kind.

KIND is a plural, a kind name or an alias: environments (env), pipelines (pipe),
applications (app), releases (rel), evidence (ev), promotions (promo),
reviews, keys, tokens, rolebindings (rb).

json and yaml print a List for several objects, which 'airlock apply' reads
back.`,
		Example: `  airlock get environments
  airlock get releases -l app=shop -o json
  airlock get env prod -o yaml
  airlock get promotions -l app=shop`,
		Args: args(cobra.RangeArgs(1, 2)),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML, formatName)
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, e.g. app=shop,tier!=test")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if selector != "" {
			if _, err := resource.ParseSelector(selector); err != nil {
				return &usageError{err}
			}
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		if len(argv) == 2 {
			if selector != "" {
				return usagef("give either a NAME or --selector, not both")
			}
			obj, err := c.Get(cmd.Context(), argv[0], argv[1])
			if err != nil {
				return err
			}
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		l, err := c.List(cmd.Context(), argv[0], selector)
		if err != nil {
			return err
		}
		return a.printObjects(*output, l.Items, true)
	}
	return cmd
}

func (a *app) deleteCommand() *cobra.Command {
	var (
		reason   string
		revision int64
	)
	cmd := &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "Delete a resource",
		Long: `Delete a resource. --reason is recorded in the audit log; --revision
deletes only if nobody changed the object since that revision.`,
		Example: `  airlock delete env scratch --reason "experiment over"`,
		Args:    args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			deleted, err := c.Delete(cmd.Context(), argv[0], argv[1], revision, reason)
			if err != nil {
				return err
			}
			if deleted == "" {
				deleted = argv[0] + "/" + argv[1]
			}
			fmt.Fprintf(a.stdout, "%s deleted\n", lowerKind(deleted))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.Flags().Int64Var(&revision, "revision", 0, "delete only if the object is still at this revision")
	return cmd
}

// lowerKind turns "Environment/dev" into "environment/dev".
func lowerKind(ref string) string {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok {
		return ref
	}
	return strings.ToLower(kind) + "/" + name
}
