package dcrcmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

func newSandboxCmd(x *exiter) *cobra.Command {
	cmd := &cobra.Command{Use: "sandbox", Short: "Manage a sandbox trust setup", Args: cobra.ArbitraryArgs, RunE: x.group}
	cmd.AddCommand(newSandboxInitCmd(x), newSandboxAddTPPCmd(x), newSandboxRevokeCmd(x))
	return cmd
}

func newSandboxInitCmd(x *exiter) *cobra.Command {
	var opts sandbox.Options
	var ifMissing bool
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--tpps N] [--host H] [--base-url URL] [--ocsp-url URL] [--if-missing | --force]",
		Short: "Write a sandbox: CAs, server certificate, directory key and TPPs",
		Long: `Writes an OB-like trust setup into --dir: ca/bundle.pem (the client_auth trust
pool), server/cert.pem and key.pem (the gateway's TLS certificate), directory/jwks.json
(the SSA signing keys), jwks/ (to serve at <base-url>/sandbox/jwks/), crl/issuing.crl
(the issuing CA's CRL, to serve at <base-url>/sandbox/crl/: the CRL distribution point of
the transport certificates) and tpps/<n>/ with each TPP's transport certificate, signing
keys, ssa.jwt and tpp.json. --ocsp-url puts an OCSP responder (which you run, signing
with ca/issuing.key) into the transport certificates' Authority Information Access.

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
	cmd.Flags().StringVar(&opts.OCSPURL, "ocsp-url", "", "OCSP responder URL for the transport certificates' AIA (default none)")
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
	// A sandbox of the previous release has no CRL and its transport certificates name no
	// revocation source, so the example Caddyfiles' revocation verifier (fail_mode hard) would
	// refuse every TPP at the TLS handshake: say so now, not with a failed handshake later.
	if _, err := os.Stat(sb.Files.IssuingCRL); err != nil {
		return ExitRejected, fmt.Errorf("the sandbox in %s predates certificate revocation (no %s): its transport certificates name no CRL, so the gateway's revocation verifier would refuse them; replace it with --force (make sandbox), or use another --dir",
			sb.Dir, sb.Files.IssuingCRL)
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
	fmt.Fprintf(w, "  issuing CA CRL:       %s (serve at %s)\n", relTo(sb, sb.Files.IssuingCRL), sb.CRLURL())
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

func newSandboxRevokeCmd(x *exiter) *cobra.Command {
	var dir, kid, reason string
	var index int
	var transportCert, signingKey bool
	cmd := &cobra.Command{
		Use:   "revoke --dir DIR --tpp N (--transport-cert | --signing-key [--kid KID]) [--reason R]",
		Short: "Revoke a TPP's transport certificate (issuing CA CRL) or signing key (revoked key sets)",
		Long: `--transport-cert lists TPP N's transport certificate on the issuing CA's CRL
(crl/issuing.crl, signed with ca/issuing.key, with a higher CRL number), which the
example Caddyfile serves at <base-url>/sandbox/crl/issuing.crl: a gateway with the
tls.client_auth.verifier.revocation module refuses the certificate once it has the new
CRL (at once if it has not fetched one yet; see docs/revocation.md for its cache).

--signing-key adds TPP N's PS256 signing key (or the key --kid names) to its revoked
key sets, jwks/<software_id>.revoked.json and jwks/<org_id>.org.revoked.json (the
SSA's software_jwks_revoked_endpoint and org_jwks_revoked_endpoint): JWK Sets of the
revoked keys, as the OB directory publishes them. The key stays in the active set.

Revoking what is already revoked changes nothing and succeeds.`,
		Args: x.noArgs,
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the sandbox directory (required)")
	cmd.Flags().IntVar(&index, "tpp", 0, "the TPP number (required)")
	cmd.Flags().BoolVar(&transportCert, "transport-cert", false, "revoke the TPP's transport certificate")
	cmd.Flags().BoolVar(&signingKey, "signing-key", false, "revoke a signing key of the TPP")
	cmd.Flags().StringVar(&kid, "kid", "", "with --signing-key: the kid to revoke (default the PS256 signing key)")
	cmd.Flags().StringVar(&reason, "reason", "keyCompromise", "with --transport-cert: the CRL reason (keyCompromise, superseded, cessationOfOperation, ...)")
	cmd.RunE = x.run(func(cmd *cobra.Command) (int, error) {
		switch {
		case dir == "":
			return ExitUsage, errors.New("--dir is required")
		case index < 1:
			return ExitUsage, errors.New("--tpp N is required (N from 1)")
		case !transportCert && !signingKey:
			return ExitUsage, errors.New("say what to revoke: --transport-cert, --signing-key or both")
		case kid != "" && !signingKey:
			return ExitUsage, errors.New("--kid goes with --signing-key")
		}
		code, ok := sandbox.RevocationReasons[reason]
		if !ok {
			return ExitUsage, fmt.Errorf("--reason %q is not one of %s", reason, strings.Join(reasonNames(), ", "))
		}
		sb, err := sandbox.Load(dir)
		if err != nil {
			return ExitRejected, err
		}
		t := sb.TPP(index)
		if t == nil {
			return ExitRejected, fmt.Errorf("the sandbox in %s has no TPP %d (it has %d)", sb.Dir, index, len(sb.TPPs))
		}
		w := cmd.OutOrStdout()
		if transportCert {
			serial, already, err := sb.RevokeTransportCert(t, code)
			if err != nil {
				return ExitRejected, err
			}
			state := "revoked (" + reason + ")"
			if already {
				state = "was already revoked"
			}
			fmt.Fprintf(w, "TPP %d transport certificate %s, serial %s: %s\n", t.Index, t.TransportSubjectDN, serial, state)
			fmt.Fprintf(w, "  CRL:                  %s (served at %s)\n", relTo(sb, sb.Files.IssuingCRL), sb.CRLURL())
		}
		if signingKey {
			if kid == "" {
				kid = t.SigningKID
			}
			already, err := sb.RevokeSigningKey(t, kid)
			if err != nil {
				return ExitRejected, err
			}
			state := "revoked"
			if already {
				state = "was already revoked"
			}
			sw, org := t.RevokedJWKSFiles()
			fmt.Fprintf(w, "TPP %d signing key %s: %s\n", t.Index, kid, state)
			fmt.Fprintf(w, "  revoked key sets:     %s, %s (served at %s, %s)\n", relTo(sb, sw), relTo(sb, org), t.JWKSRevokedURL, t.OrgJWKSRevokedURL)
		}
		return ExitOK, nil
	})
	return cmd
}

func reasonNames() []string {
	names := make([]string, 0, len(sandbox.RevocationReasons))
	for n := range sandbox.RevocationReasons {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
