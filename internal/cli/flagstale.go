package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) flagsStaleCommand() *cobra.Command {
	var env, appName string
	cmd := &cobra.Command{
		Use:   "stale [--env ENV] [--app APP] [-o table|json|yaml]",
		Short: "List flags that are ready to be removed, with what to do",
		Long: `List stale flags, each with a suggested removal:

  uniform  the flag has served one variant to everyone for longer than its
           lifetime (spec.lifetime; default 40 days for release flags, 7 for
           operational ones): replace its evaluations with that value in the
           application's code, then delete the flag.
  unused   nobody has evaluated the flag over OFREP for 30 days (or ever,
           since it was created 30 days ago): confirm no client uses it, then
           delete it.

A flag can be listed once for each. The server records the UTC day each flag
was last evaluated, at most once a day per flag. The exit code is 0 whether
or not stale flags exist; scripts read -o json (an object whose "items" are
the findings, empty when there are none).`,
		Example: `  airlock flags stale
  airlock flags stale --env prod --app shop -o json`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&env, "env", "", "only the flags of this environment")
	cmd.Flags().StringVar(&appName, "app", "", "only the flags of this application")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		res, err := c.StaleFlags(cmd.Context(), env, appName)
		if err != nil {
			return err
		}
		if *output != formatTable {
			return writeData(a.stdout, *output, res)
		}
		if len(res.Items) == 0 {
			fmt.Fprintln(a.stderr, "No stale flags.")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tSINCE\tDAYS\tSUGGESTION")
		for _, f := range res.Items {
			since := f.Since.UTC().Format(time.DateOnly)
			if f.SinceEstimated {
				since = "≥" + since
			}
			fmt.Fprintln(tw, strings.Join([]string{f.Name, f.Kind, since, strconv.Itoa(f.Days), cell(f.Suggestion, 500)}, "\t"))
		}
		return tw.Flush()
	}
	return cmd
}
