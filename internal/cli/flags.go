package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) flagsCommand() *cobra.Command {
	keyCmd := group("key", "Evaluation keys: what applications evaluate one environment's flags with", a.flagsKeyCreateCommand())
	cmd := group("flags", "Feature flags served over OpenFeature (OFREP)",
		a.listCommand("List the flags, every environment", "", func(c *client.Client, ctx context.Context) ([]*resource.Object, error) {
			l, err := c.List(ctx, "flags", "")
			if err != nil {
				return nil, err
			}
			return l.Items, nil
		}),
		a.flagsEvalCommand(),
		a.flagsPlanCommand(),
		a.flagsStaleCommand(),
		keyCmd,
	)
	cmd.AddCommand(a.flagChangeCommands()...)
	return cmd
}

func (a *app) flagsKeyCreateCommand() *cobra.Command {
	var env, name string
	cmd := &cobra.Command{
		Use:   "create --env ENV [--name NAME] [-o json]",
		Short: "Make an evaluation key for one environment",
		Long: `Make an evaluation key: a token holding only the evaluator role, for exactly
one environment. An application's OpenFeature OFREP provider sends it as
"Authorization: Bearer KEY" and evaluates that environment's flags; a
production key cannot evaluate other environments' flags, and the other way
round. It reads nothing else. The key is shown once (-o json prints an
object whose "key" field holds it).`,
		Example: `  airlock flags key create --env prod -o json`,
		Args:    args(cobra.NoArgs),
	}
	output := outputFlag(cmd, "", formatJSON)
	cmd.Flags().StringVar(&env, "env", "", "the environment (required)")
	cmd.Flags().StringVar(&name, "name", "", "the key's identity (default: flags-ENV-RANDOM)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if env == "" {
			return usagef("--env is required: an evaluation key belongs to one environment")
		}
		if name == "" {
			b := make([]byte, 4)
			rand.Read(b)
			name = "flags-" + env + "-" + hex.EncodeToString(b)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		tok, err := c.CreateToken(cmd.Context(), client.TokenRequest{Name: name, Roles: []string{"evaluator"}, Environments: []string{env}})
		if err != nil {
			return err
		}
		if *output == formatJSON {
			return writeJSON(a.stdout, map[string]any{"name": tok.Name, "environment": env, "key": tok.Token})
		}
		fmt.Fprintln(a.stdout, tok.Token)
		fmt.Fprintf(a.stderr, "evaluation key %q for %s created; the key above is shown only once\n", tok.Name, env)
		return nil
	}
	return cmd
}

func (a *app) flagsEvalCommand() *cobra.Command {
	var env, targetingKey string
	var attrs []string
	cmd := &cobra.Command{
		Use:   "eval KEY --env ENV [--targeting-key ID] [--attr NAME=VALUE ...]",
		Short: "Evaluate a flag as an application would (over OFREP)",
		Long: `Evaluate a flag over OFREP: with an admin token, in the environment --env
names; with an evaluation key, in its own. Attribute values that read as
numbers or booleans are sent as such.`,
		Example: `  airlock flags eval new-checkout --env prod --targeting-key user-42 --attr email=ana@shop.example`,
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON)
	cmd.Flags().StringVar(&env, "env", "", "the environment (with an admin token)")
	cmd.Flags().StringVar(&targetingKey, "targeting-key", "", "the user or entity the flag is evaluated for")
	cmd.Flags().StringArrayVar(&attrs, "attr", nil, "an attribute NAME=VALUE of the evaluation context (repeatable)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		ctx := map[string]any{}
		if targetingKey != "" {
			ctx["targetingKey"] = targetingKey
		}
		for _, kv := range attrs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("--attr takes NAME=VALUE, got %q", kv)
			}
			ctx[k] = attrValue(v)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		res, err := c.EvaluateFlag(cmd.Context(), env, argv[0], ctx)
		if err != nil {
			return err
		}
		if *output == formatJSON {
			return writeJSON(a.stdout, res)
		}
		if res.ErrorCode != "" {
			fmt.Fprintf(a.stderr, "%s: %s: %s\n", res.Key, res.ErrorCode, res.ErrorDetails)
			return &exitError{ExitError}
		}
		fmt.Fprintf(a.stdout, "%s = %v (variant %s, reason %s)\n", res.Key, res.Value, res.Variant, res.Reason)
		return nil
	}
	return cmd
}

// attrValue reads an attribute as a number or boolean when it is one.
func attrValue(v string) any {
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f
	}
	return v
}
