package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) keyCommand() *cobra.Command {
	return group("key", "Manage the signing keys of CI identities",
		a.keyAddCommand(),
		a.keyListCommand(),
		a.keyRemoveCommand(),
	)
}

// maxKeyFile bounds a public key file; a PEM public key is a few hundred
// bytes.
const maxKeyFile = 64 << 10

func (a *app) keyAddCommand() *cobra.Command {
	var publicKey, identity, description string
	cmd := &cobra.Command{
		Use:   "add NAME --public-key FILE [--identity ID] [--description TEXT]",
		Short: "Register the public key of a CI identity",
		Long: `Register the public key (PEM, ed25519 or ECDSA P-256) of a CI identity.
Evidence delivered in a DSSE envelope signed by a registered key, for the
release's artifact digest, is trusted and names --identity (default NAME)
as its signer. FILE - reads standard input.`,
		Example: `  airlock key add github-actions-shop --public-key ci.pub --identity github-actions-shop`,
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&publicKey, "public-key", "", "PEM file of the public key (required)")
	cmd.Flags().StringVar(&identity, "identity", "", "the CI identity the key signs for (default NAME)")
	cmd.Flags().StringVar(&description, "description", "", "what the key is for")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if publicKey == "" {
			return usagef("--public-key is required: the PEM file of an ed25519 or ECDSA P-256 public key")
		}
		var (
			pem []byte
			err error
		)
		if publicKey == "-" {
			pem, err = io.ReadAll(io.LimitReader(a.stdin, maxKeyFile+1))
		} else {
			pem, err = os.ReadFile(publicKey)
		}
		if err != nil {
			return fmt.Errorf("public key %s: %w", publicKey, unwrapPath(err))
		}
		if len(pem) > maxKeyFile {
			return fmt.Errorf("public key %s is larger than %d KiB: is it a public key?", publicKey, maxKeyFile>>10)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.AddKey(cmd.Context(), client.KeyRequest{Name: argv[0], PublicKey: string(pem), Identity: identity, Description: description})
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		var spec struct {
			Algorithm string `json:"algorithm"`
			KeyID     string `json:"keyID"`
			Identity  string `json:"identity"`
		}
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			return fmt.Errorf("%s: decode spec: %w", obj.Ref(), err)
		}
		fmt.Fprintf(a.stdout, "key/%s added: %s key %s signs for %s\n", obj.Metadata.Name, spec.Algorithm, spec.KeyID, spec.Identity)
		return nil
	}
	return cmd
}

func (a *app) keyListCommand() *cobra.Command {
	return a.listCommand("List registered signing keys", "", (*client.Client).ListKeys)
}

func (a *app) keyRemoveCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "remove NAME [--reason TEXT]",
		Short: "Remove a signing key; evidence it signed keeps its recorded trust",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RemoveKey(cmd.Context(), argv[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "key/%s removed\n", argv[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
