package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) releaseCommand() *cobra.Command {
	return group("release", "Register releases", a.releaseCreateCommand())
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (a *app) releaseCreateCommand() *cobra.Command {
	var artifact, commit string
	var authors []string
	cmd := &cobra.Command{
		Use:   "create APP VERSION --artifact PATH|sha256:HEX --commit SHA",
		Short: "Register an immutable release of an application",
		Long: `Register an immutable release of an application, identified by the sha256
digest of its artifact.

--artifact takes the artifact file, whose digest, name and size are computed
locally and whose bytes are then stored in airlock's content store (the
local runtime runs releases from there), or a digest sha256:<64 hex digits>
for an artifact airlock does not run (an image in a registry).`,
		Example: `  airlock release create shop 1.4.0 --artifact dist/shop.tar.gz --commit "$(git rev-parse HEAD)" --author alice`,
		Args:    args(cobra.ExactArgs(2)),
	}
	output := outputFlag(cmd, "", formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&artifact, "artifact", "", "artifact file, or its digest sha256:HEX (required)")
	cmd.Flags().StringVar(&commit, "commit", "", "source commit the artifact was built from (required)")
	cmd.Flags().StringArrayVar(&authors, "author", nil, "airlock identity of an author of the commit (repeatable); authors may not approve the release's promotions")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		switch {
		case artifact == "":
			return usagef("--artifact is required: the artifact file or its digest sha256:HEX")
		case commit == "":
			return usagef("--commit is required: the commit the artifact was built from")
		}
		art, err := artifactOf(artifact)
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		rel, err := c.CreateRelease(cmd.Context(), client.ReleaseRequest{App: argv[0], Version: argv[1], Artifact: art, Commit: commit, Authors: authors})
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict && !strings.HasPrefix(artifact, "sha256:") {
			// Registered before (a re-run job): store the bytes if they are
			// this release's, which the server checks against its digest.
			if f, ferr := os.Open(artifact); ferr == nil {
				uerr := c.UploadArtifact(cmd.Context(), release.Name(argv[0], argv[1]), f)
				f.Close()
				if uerr == nil {
					fmt.Fprintf(a.stderr, "release/%s already exists; its artifact is stored\n", release.Name(argv[0], argv[1]))
				}
			}
		}
		if err != nil {
			return err
		}
		if !strings.HasPrefix(artifact, "sha256:") {
			// The local runtime runs the release from airlock's content
			// store: the bytes go there, checked against the digest.
			f, err := os.Open(artifact)
			if err != nil {
				return fmt.Errorf("artifact %s: %w", artifact, unwrapPath(err))
			}
			defer f.Close()
			if err := c.UploadArtifact(cmd.Context(), rel.Metadata.Name, f); err != nil {
				return fmt.Errorf("release/%s created, but its artifact was not stored (run the command again to retry the upload): %w", rel.Metadata.Name, err)
			}
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{rel}, false)
		}
		fmt.Fprintf(a.stdout, "release/%s created (%s)\n", rel.Metadata.Name, art.Digest)
		return nil
	}
	return cmd
}

// artifactOf reads --artifact: a digest as given, or a file hashed by
// streaming it.
func artifactOf(arg string) (client.Artifact, error) {
	if strings.HasPrefix(arg, "sha256:") {
		if !digestRE.MatchString(arg) {
			return client.Artifact{}, usagef("--artifact %q is not a digest: write sha256: and 64 lower-case hex digits, or give the artifact file", arg)
		}
		return client.Artifact{Digest: arg}, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return client.Artifact{}, fmt.Errorf("artifact %s: %w", arg, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return client.Artifact{}, fmt.Errorf("artifact %s: %w", arg, err)
	}
	if !fi.Mode().IsRegular() {
		return client.Artifact{}, fmt.Errorf("artifact %s is not a regular file", arg)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return client.Artifact{}, fmt.Errorf("hash artifact %s: %w", arg, err)
	}
	return client.Artifact{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Name: filepath.Base(arg), Size: n}, nil
}
