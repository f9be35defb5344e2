package dcrcmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

func newSandboxCmd(x *exiter) *cobra.Command {
	cmd := &cobra.Command{Use: "sandbox", Short: "Manage a sandbox trust setup", Args: cobra.ArbitraryArgs, RunE: x.group}
	cmd.AddCommand(newSandboxInitCmd(x), newSandboxAddTPPCmd(x))
	return cmd
}

func newSandboxInitCmd(x *exiter) *cobra.Command {
	var opts sandbox.Options
	var ifMissing bool
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--tpps N] [--host H] [--base-url URL] [--if-missing | --force]",
		Short: "Write a sandbox: CAs, server certificate, directory key and TPPs",
		Long: `Writes an OB-like trust setup into --dir: ca/bundle.pem (the client_auth trust
pool), server/cert.pem and key.pem (the gateway's TLS certificate), directory/jwks.json
(the SSA signing keys), jwks/ (to serve at <base-url>/sandbox/jwks/) and tpps/<n>/
with each TPP's transport certificate, signing keys, ssa.jwt and tpp.json.

An existing sandbox in --dir is refused. --if-missing accepts one that was made for the
same --base-url and changes nothing (one made for another base URL is refused: its SSAs
point their software_jwks_endpoint there). --force replaces everything: CA, server
certificate, directory key and all TPPs; a gateway or client that trusted the old CA
must be given the new one. 'sandbox add-tpp' adds TPPs and keeps the trust setup.`,
		Args: x.noArgs,
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory to write the sandbox into (required)")
	cmd.Flags().IntVar(&opts.TPPs, "tpps", 1, "number of TPPs")
	cmd.Flags().StringVar(&opts.Host, "host", sandbox.DefaultHost, "extra host name or IP for the server certificate")
	cmd.Flags().StringVar(&opts.BaseURL, "base-url", sandbox.DefaultBaseURL, "where the gateway serves the sandbox JWKS (SSA jwks endpoints)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing sandbox in --dir entirely (new CA, server certificate, directory key and TPPs)")
	cmd.Flags().BoolVar(&ifMissing, "if-missing", false, "keep an existing sandbox made for the same --base-url")
	cmd.RunE = x.run(func(cmd *cobra.Command) (int, error) {
		if opts.Dir == "" {
			return ExitUsage, errors.New("--dir is required")
		}
		if opts.TPPs < 1 {
			return ExitUsage, errors.New("--tpps must be at least 1")
		}
		if ifMissing && opts.Force {
			return ExitUsage, errors.New("--if-missing and --force exclude each other")
		}
		if ifMissing {
			if _, err := os.Stat(filepath.Join(opts.Dir, "sandbox.json")); err == nil {
				return keepSandbox(cmd.OutOrStdout(), opts)
			}
		}
		sb, err := sandbox.Init(opts)
		if errors.Is(err, sandbox.ErrExists) {
			return ExitRejected, fmt.Errorf("%w (add-tpp adds TPPs to it; --force replaces the CA, keys and TPPs)", err)
		}
		if err != nil {
			return ExitRejected, err
		}
		printSandbox(cmd.OutOrStdout(), sb)
		return ExitOK, nil
	})
	return cmd
}

// keepSandbox is init --if-missing on an existing sandbox: fine when it was made for the same
// base URL, refused (with what to do) when not, so a gateway on another port never serves SSAs
// whose software_jwks_endpoint points elsewhere.
func keepSandbox(w io.Writer, opts sandbox.Options) (int, error) {
	sb, err := sandbox.Load(opts.Dir)
	if err != nil {
		return ExitRejected, err
	}
	want := strings.TrimRight(opts.BaseURL, "/")
	if sb.BaseURL != want {
		return ExitRejected, fmt.Errorf("the sandbox in %s was made for %s, not %s (its SSAs point their software_jwks_endpoint there): use another --dir for %s, or replace this one with --force (a new CA and keys)",
			sb.Dir, sb.BaseURL, want, want)
	}
	fmt.Fprintf(w, "Sandbox %s exists (for %s, %d TPPs); kept as it is\n", sb.Dir, sb.BaseURL, len(sb.TPPs))
	return ExitOK, nil
}

func newSandboxAddTPPCmd(x *exiter) *cobra.Command {
	var dir string
	var count int
	cmd := &cobra.Command{
		Use:   "add-tpp --dir DIR [--count N]",
		Short: "Add TPPs to an existing sandbox, keeping its CA, server certificate and directory key",
		Long: `Adds N TPPs (tpps/<n>/ and their jwks/ files, numbered after the existing ones) to the
sandbox in --dir. The CA, the server certificate, the directory key and the base URL stay
as they are, so a gateway configured with them accepts the new TPPs without a restart.`,
		Args: x.noArgs,
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the sandbox directory (required)")
	cmd.Flags().IntVar(&count, "count", 1, "number of TPPs to add")
	cmd.RunE = x.run(func(cmd *cobra.Command) (int, error) {
		if dir == "" {
			return ExitUsage, errors.New("--dir is required")
		}
		if count < 1 {
			return ExitUsage, errors.New("--count must be at least 1")
		}
		sb, err := sandbox.Load(dir)
		if err != nil {
			return ExitRejected, fmt.Errorf("%w ('sandbox init --dir %s' makes one)", err, dir)
		}
		added, err := sb.AddTPPs(count)
		for _, t := range added {
			printTPP(cmd.OutOrStdout(), sb, t)
		}
		if err != nil {
			return ExitRejected, err
		}
		return ExitOK, nil
	})
	return cmd
}

func printSandbox(w io.Writer, sb *sandbox.Sandbox) {
	fmt.Fprintf(w, "Sandbox written to %s\n", sb.Dir)
	fmt.Fprintf(w, "  directory:            %s (kid %s)\n", sb.DirectoryIssuer, sb.DirectoryKID)
	fmt.Fprintf(w, "  directory JWKS:       %s\n", relTo(sb, sb.Files.DirectoryJWKS))
	fmt.Fprintf(w, "  CA bundle:            %s (client_auth trust pool, JWKS server roots)\n", relTo(sb, sb.Files.CABundle))
	fmt.Fprintf(w, "  server certificate:   %s, %s\n", relTo(sb, sb.Files.ServerCert), relTo(sb, sb.Files.ServerKey))
	fmt.Fprintf(w, "  JWKS files:           %s/ (serve at %s/sandbox/jwks/)\n", relTo(sb, sb.Files.JWKSDir), sb.BaseURL)
	for _, t := range sb.TPPs {
		printTPP(w, sb, t)
	}
}

func printTPP(w io.Writer, sb *sandbox.Sandbox, t *sandbox.TPP) {
	rel := func(p string) string { return relTo(sb, p) }
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

func relTo(sb *sandbox.Sandbox, p string) string {
	if r, err := filepath.Rel(sb.Dir, p); err == nil {
		return r
	}
	return p
}
