package dcrcmd

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

func newSandboxInitCmd(x *exiter) *cobra.Command {
	var opts sandbox.Options
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--tpps N] [--host H] [--base-url URL] [--force]",
		Short: "Write a sandbox: CAs, server certificate, directory key and TPPs",
		Long: `Writes an OB-like trust setup into --dir: ca/bundle.pem (the client_auth trust
pool), server/cert.pem and key.pem (the gateway's TLS certificate), directory/jwks.json
(the SSA signing keys), jwks/ (to serve at <base-url>/sandbox/jwks/) and tpps/<n>/
with each TPP's transport certificate, signing keys, ssa.jwt and tpp.json.`,
		Args: x.noArgs,
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory to write the sandbox into (required)")
	cmd.Flags().IntVar(&opts.TPPs, "tpps", 1, "number of TPPs")
	cmd.Flags().StringVar(&opts.Host, "host", sandbox.DefaultHost, "extra host name or IP for the server certificate")
	cmd.Flags().StringVar(&opts.BaseURL, "base-url", sandbox.DefaultBaseURL, "where the gateway serves the sandbox JWKS (SSA jwks endpoints)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing sandbox in --dir")
	cmd.RunE = x.run(func(cmd *cobra.Command) (int, error) {
		if opts.Dir == "" {
			return ExitUsage, errors.New("--dir is required")
		}
		if opts.TPPs < 1 {
			return ExitUsage, errors.New("--tpps must be at least 1")
		}
		sb, err := sandbox.Init(opts)
		if errors.Is(err, sandbox.ErrExists) {
			return ExitRejected, fmt.Errorf("%w (--force replaces it)", err)
		}
		if err != nil {
			return ExitRejected, err
		}
		printSandbox(cmd.OutOrStdout(), sb)
		return ExitOK, nil
	})
	return cmd
}

func printSandbox(w io.Writer, sb *sandbox.Sandbox) {
	rel := func(p string) string {
		if r, err := filepath.Rel(sb.Dir, p); err == nil {
			return r
		}
		return p
	}
	fmt.Fprintf(w, "Sandbox written to %s\n", sb.Dir)
	fmt.Fprintf(w, "  directory:            %s (kid %s)\n", sb.DirectoryIssuer, sb.DirectoryKID)
	fmt.Fprintf(w, "  directory JWKS:       %s\n", rel(sb.Files.DirectoryJWKS))
	fmt.Fprintf(w, "  CA bundle:            %s (client_auth trust pool, JWKS server roots)\n", rel(sb.Files.CABundle))
	fmt.Fprintf(w, "  server certificate:   %s, %s\n", rel(sb.Files.ServerCert), rel(sb.Files.ServerKey))
	fmt.Fprintf(w, "  JWKS files:           %s/ (serve at %s/sandbox/jwks/)\n", rel(sb.Files.JWKSDir), sb.BaseURL)
	for _, t := range sb.TPPs {
		fmt.Fprintf(w, "TPP %d: %s\n", t.Index, t.ClientName)
		fmt.Fprintf(w, "  org_id:               %s\n", t.OrgID)
		fmt.Fprintf(w, "  software_id:          %s\n", t.SoftwareID)
		fmt.Fprintf(w, "  transport cert:       %s, %s\n", rel(t.TransportCert), rel(t.TransportKey))
		fmt.Fprintf(w, "  subject DN:           %s\n", t.TransportSubjectDN)
		fmt.Fprintf(w, "  signing keys:         %s (PS256, kid %s), %s (ES256, kid %s)\n", rel(t.SigningKey), t.SigningKID, rel(t.SigningKeyEC), t.SigningKIDEC)
		fmt.Fprintf(w, "  software statement:   %s\n", rel(t.SSAFile))
		fmt.Fprintf(w, "  software JWKS:        %s\n", t.JWKSURL)
		fmt.Fprintf(w, "  details:              %s\n", rel(filepath.Join(t.Dir, "tpp.json")))
	}
}
