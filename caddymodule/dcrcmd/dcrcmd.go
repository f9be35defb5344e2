// Package dcrcmd adds `caddy dcr ...`: building a sandbox trust setup and acting as a TPP
// against a DCR endpoint (register, get, update, delete), so the gateway can be exercised from
// a shell. Import it for its side effect, as cmd/caddy does with the modules.
//
// Exit codes: 0 when the endpoint answered 2xx (or the local action worked), 1 when it answered
// anything else or could not be reached (a rejection must fail scripts), 2 for usage errors.
package dcrcmd

import (
	"errors"
	"fmt"
	"io"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// Exit codes of every dcr subcommand.
const (
	ExitOK       = 0
	ExitRejected = 1
	ExitUsage    = 2
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "dcr",
		Usage: "<sandbox init|sandbox add-tpp|sandbox revoke|register|get|update|delete|policy eval|policy input|store migrate|clients list|clients show|clients delete|clients history> [flags]",
		Short: "Open Banking DCR tools: sandbox trust setup and a TPP client",
		Long: `
Tools around Open Banking UK Dynamic Client Registration v3.2.

'caddy dcr sandbox init' writes a directory CA, a gateway server certificate, a
directory signing key and TPPs (transport certificates, signing keys, JWKS and
signed software statements) into a directory; 'caddy dcr sandbox add-tpp' adds TPPs
to it without touching the CA and keys; 'caddy dcr sandbox revoke' revokes a TPP's
transport certificate (the CA's CRL) or signing key (its revoked key sets).

'caddy dcr store migrate --from caddy --to bolt' copies the registry of the caddy
store (Caddy storage) into the embedded bolt store, the default since it replaced it.

'caddy dcr clients list|show|delete|history' are the operator's view of the
registry over Caddy's admin API (admin.api.dcr; --address as for 'caddy reload').

'caddy dcr register|get|update|delete' act as a TPP: they sign an OB registration
request with the TPP's key, send it over mTLS, print the status and the JSON body,
and keep the returned client_id and registration_access_token in a state file.

Exit status: 0 for a 2xx answer, 1 for any other answer or a transport error,
2 for a usage error.`,
		CobraFunc: func(cmd *cobra.Command) { configure(cmd, nil) },
	})
}

// Execute runs the dcr command tree in process (args exclude "dcr") and returns its exit
// code. It is what tests use; `caddy dcr` goes through caddycmd.Main instead.
func Execute(args []string, stdout, stderr io.Writer) int {
	code := ExitOK
	root := &cobra.Command{Use: "dcr"}
	configure(root, &code)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil && code == ExitOK {
		// An error cobra produced before our RunE ran.
		fmt.Fprintln(stderr, "Error:", err)
		code = ExitUsage
	}
	return code
}

// configure turns cmd into the dcr command. code, if not nil, receives the exit code of the
// subcommand that ran (caddycmd.Main reads it from the returned error instead).
func configure(cmd *cobra.Command, code *int) {
	x := &exiter{code: code}
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return x.usage(c, err) })
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = x.group

	cmd.AddCommand(newSandboxCmd(x), newRegisterCmd(x), newGetCmd(x), newUpdateCmd(x), newDeleteCmd(x), newPolicyCmd(x), newStoreCmd(x), newClientsCmd(x))
	silence(cmd)
}

func silence(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		c.SilenceErrors, c.SilenceUsage = true, true
		silence(c)
	}
}

// exiter maps (exit code, error) to what cobra and caddycmd.Main expect. Main exits with the
// code of caddycmd's (unexported) exitError and with 1 for any other error, so code 1 is a
// plain error and codes above 1 are minted through WrapCommandFuncForCobra.
type exiter struct{ code *int }

func (x *exiter) exit(cmd *cobra.Command, code int, err error) error {
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
	}
	if code == ExitUsage {
		fmt.Fprintf(cmd.ErrOrStderr(), "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	if x.code != nil {
		*x.code = code
	}
	switch {
	case code == ExitOK:
		return nil
	case code == ExitRejected:
		if err == nil {
			err = errRejected
		}
		return err
	default:
		return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, nil })(cmd, nil)
	}
}

var errRejected = errors.New("the endpoint rejected the request")

func (x *exiter) usage(cmd *cobra.Command, err error) error { return x.exit(cmd, ExitUsage, err) }

// run adapts a subcommand body to cobra.
func (x *exiter) run(f func(cmd *cobra.Command) (int, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		code, err := f(cmd)
		return x.exit(cmd, code, err)
	}
}

// noArgs rejects positional arguments as a usage error (cobra.NoArgs would exit 1).
func (x *exiter) noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return x.usage(cmd, fmt.Errorf("unexpected argument %q", strings.Join(args, " ")))
	}
	return nil
}

// group is the RunE of a command that only holds subcommands.
func (x *exiter) group(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return x.usage(cmd, fmt.Errorf("unknown subcommand %q", args[0]))
	}
	_ = cmd.Help()
	return x.exit(cmd, ExitOK, nil)
}

// usageError marks an error found while reading flags, so it exits 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// codeFor is the exit code of an error returned by a subcommand body.
func codeFor(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitRejected
}
