package dcrcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

const defaultEndpoint = "https://localhost:8443/register"

// clientFlags are the flags of register/get/update/delete; each command registers the subset
// it uses.
type clientFlags struct {
	endpoint, audience string
	sandboxDir         string
	tpp                int
	cert, key, ca      string
	ssa, signingKey    string
	kid, softwareID    string
	alg                string
	claims             []string
	ssaClaims          []string
	freshSSA           bool
	exp, iat           time.Duration
	contentType        string
	bearer             string
	clientID, token    string
	stateFile          string
	printRequest       bool
}

func (f *clientFlags) addConnection(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.endpoint, "endpoint", defaultEndpoint, "registration endpoint URL (default with --sandbox: <its base URL>/register)")
	fs.StringVar(&f.sandboxDir, "sandbox", "", "sandbox directory to take the TPP's files from")
	fs.IntVar(&f.tpp, "tpp", 1, "TPP number within the sandbox")
	fs.StringVar(&f.cert, "cert", "", "transport certificate chain (PEM), instead of or over --sandbox")
	fs.StringVar(&f.key, "key", "", "transport private key (PEM)")
	fs.StringVar(&f.ca, "ca", "", "CA bundle to trust for the server (PEM); default: the sandbox bundle, else system roots")
	fs.StringVar(&f.stateFile, "state", "", "state file (default <sandbox>/tpps/<n>/registration.json, else ./registration.json)")
}

func (f *clientFlags) addManagement(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.clientID, "client-id", "", "client_id to manage (default: from the state file)")
	cmd.Flags().StringVar(&f.token, "token", "", "registration access token (default: from the state file)")
}

func (f *clientFlags) addSigning(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.audience, "audience", "", "aud of the request (default: the endpoint's scheme://host[:port])")
	fs.StringVar(&f.ssa, "ssa", "", "software statement file (compact JWS)")
	fs.StringVar(&f.signingKey, "signing-key", "", "request signing key (PEM)")
	fs.StringVar(&f.kid, "kid", "", `kid header (an explicit "" omits it); default: the signing key's kid`)
	fs.StringVar(&f.softwareID, "software-id", "", "iss of the request (default: the SSA's software_id)")
	fs.StringVar(&f.alg, "alg", "", "JWS alg (PS256, ES256, ..., none); with --sandbox, ES* picks the TPP's EC key")
	fs.StringArrayVar(&f.claims, "claim", nil, "set a request claim: name=value (JSON if it parses), name= (empty string), -name (remove); repeatable")
	fs.DurationVar(&f.exp, "exp", 0, "exp relative to now (e.g. 10m, -1m)")
	fs.DurationVar(&f.iat, "iat", 0, "iat relative to now (e.g. -2m)")
	fs.StringVar(&f.contentType, "content-type", tppclient.ContentTypeJOSE, "Content-Type of the request")
	fs.BoolVar(&f.printRequest, "print-request", false, "print the JWS header and claims that are sent")
	fs.BoolVar(&f.freshSSA, "fresh-ssa", false, "sign a new SSA with the sandbox directory key instead of using ssa.jwt")
	fs.StringArrayVar(&f.ssaClaims, "ssa-claim", nil, "like --claim, for a freshly signed SSA (implies --fresh-ssa; needs --sandbox)")
}

func newRegisterCmd(x *exiter) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "register [--sandbox DIR --tpp N | --cert --key --ca --ssa --signing-key] [flags]",
		Short: "Register the TPP's software (POST a signed request)",
		Args:  x.noArgs,
	}
	f.addConnection(cmd)
	f.addSigning(cmd)
	cmd.Flags().StringVar(&f.bearer, "bearer", "", "send Authorization: Bearer TOKEN (an initial access token)")
	cmd.RunE = x.run(func(cmd *cobra.Command) (int, error) {
		env, err := f.setup(cmd, true)
		if err != nil {
			return codeFor(err), err
		}
		body, err := f.signedRequest(cmd, env)
		if err != nil {
			return codeFor(err), err
		}
		res, err := env.client.Register(cmd.Context(), body, f.contentType, f.bearer)
		if err != nil {
			return ExitRejected, err
		}
		printResponse(cmd.OutOrStdout(), res)
		if res.OK() && res.JSON["client_id"] != nil {
			st, err := tppclient.StateFromResponse(res)
			if err != nil {
				return ExitRejected, err
			}
			st.Endpoint, st.SoftwareID = env.client.Endpoint, env.client.SoftwareID
			if err := tppclient.SaveState(env.statePath, st); err != nil {
				return ExitRejected, fmt.Errorf("saving the registration: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Saved client_id %s and its registration access token to %s\n", st.ClientID, env.statePath)
		}
		return exitFor(res), nil
	})
	return cmd
}

// newManagementCmd is a subcommand on one existing registration (get, update, delete): the
// connection and management flags (and the signing flags when signing), the client set up and
// the registration to act on found, then act.
func newManagementCmd(x *exiter, use, short string, signing bool,
	act func(cmd *cobra.Command, f *clientFlags, env *clientEnv, st tppclient.State) (int, error)) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: use, Short: short, Args: x.noArgs}
	f.addConnection(cmd)
	f.addManagement(cmd)
	if signing {
		f.addSigning(cmd)
	}
	cmd.RunE = x.run(func(cmd *cobra.Command) (int, error) {
		env, err := f.setup(cmd, signing)
		if err != nil {
			return codeFor(err), err
		}
		st, err := f.managed(env)
		if err != nil {
			return codeFor(err), err
		}
		return act(cmd, f, env, st)
	})
	return cmd
}

func newGetCmd(x *exiter) *cobra.Command {
	return newManagementCmd(x, "get [--client-id ID --token T | --state FILE] [flags]",
		"Read the registration (GET /register/{client_id})", false,
		func(cmd *cobra.Command, _ *clientFlags, env *clientEnv, st tppclient.State) (int, error) {
			res, err := env.client.Get(cmd.Context(), st.ClientID, st.RegistrationAccessToken)
			if err != nil {
				return ExitRejected, err
			}
			printResponse(cmd.OutOrStdout(), res)
			return exitFor(res), nil
		})
}

func newUpdateCmd(x *exiter) *cobra.Command {
	return newManagementCmd(x, "update [--client-id ID --token T | --state FILE] [flags]",
		"Update the registration (PUT a signed request to /register/{client_id})", true,
		func(cmd *cobra.Command, f *clientFlags, env *clientEnv, st tppclient.State) (int, error) {
			body, err := f.signedRequest(cmd, env)
			if err != nil {
				return codeFor(err), err
			}
			res, err := env.client.UpdateAs(cmd.Context(), st.ClientID, st.RegistrationAccessToken, body, f.contentType)
			if err != nil {
				return ExitRejected, err
			}
			printResponse(cmd.OutOrStdout(), res)
			// A server may rotate the registration access token on update; keep the new one.
			if tok, _ := res.JSON["registration_access_token"].(string); res.OK() && tok != "" && env.fromState {
				env.state.RegistrationAccessToken = tok
				if err := tppclient.SaveState(env.statePath, env.state); err != nil {
					return ExitRejected, fmt.Errorf("saving the rotated token: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Saved the new registration access token to %s\n", env.statePath)
			}
			return exitFor(res), nil
		})
}

func newDeleteCmd(x *exiter) *cobra.Command {
	return newManagementCmd(x, "delete [--client-id ID --token T | --state FILE] [flags]",
		"Delete the registration (DELETE /register/{client_id})", false,
		func(cmd *cobra.Command, _ *clientFlags, env *clientEnv, st tppclient.State) (int, error) {
			res, err := env.client.Delete(cmd.Context(), st.ClientID, st.RegistrationAccessToken)
			if err != nil {
				return ExitRejected, err
			}
			printResponse(cmd.OutOrStdout(), res)
			// The state file describes the deleted client only if the id came from it.
			if res.Status == http.StatusNoContent && env.fromState && env.state.ClientID == st.ClientID {
				if err := os.Remove(env.statePath); err != nil {
					return ExitRejected, err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Removed %s\n", env.statePath)
			}
			return exitFor(res), nil
		})
}

// clientEnv is what a subcommand works with once its flags are resolved.
type clientEnv struct {
	client    *tppclient.Client
	sb        *sandbox.Sandbox
	tpp       *sandbox.TPP
	statePath string
	// state is the state file's content when it exists; fromState says it was read.
	state     tppclient.State
	fromState bool
}

// setup resolves the TPP's files (sandbox first, explicit flags over it) into a client.
func (f *clientFlags) setup(cmd *cobra.Command, signing bool) (*clientEnv, error) {
	env := &clientEnv{}
	files := tppclient.Files{}
	if f.sandboxDir != "" {
		sb, err := sandbox.Load(f.sandboxDir)
		if err != nil {
			return nil, err
		}
		tpp := sb.TPP(f.tpp)
		if tpp == nil {
			return nil, usagef("the sandbox has no TPP %d (it has %d)", f.tpp, len(sb.TPPs))
		}
		env.sb, env.tpp = sb, tpp
		files = tppclient.Files{
			Cert: tpp.TransportCert, Key: tpp.TransportKey, CA: sb.Files.CABundle, SSA: tpp.SSAFile,
			SigningKey: tpp.SigningKey, KID: tpp.SigningKID, SoftwareID: tpp.SoftwareID,
		}
		if strings.HasPrefix(strings.ToUpper(f.alg), "ES") {
			files.SigningKey, files.KID = tpp.SigningKeyEC, tpp.SigningKIDEC
		}
		env.statePath = filepath.Join(tpp.Dir, "registration.json")
		// The sandbox was made for one gateway (its SSAs point there): talk to that one.
		if !cmd.Flags().Changed("endpoint") && sb.BaseURL != "" {
			f.endpoint = sb.BaseURL + "/register"
		}
	} else {
		if f.cert == "" || f.key == "" {
			return nil, usagef("either --sandbox or both --cert and --key are required")
		}
		env.statePath = "registration.json"
	}
	override := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	override(&files.Cert, f.cert)
	override(&files.Key, f.key)
	override(&files.CA, f.ca)
	override(&files.SSA, f.ssa)
	override(&files.SigningKey, f.signingKey)
	override(&files.KID, f.kid)
	override(&files.SoftwareID, f.softwareID)
	override(&env.statePath, f.stateFile)
	if f.signingKey != "" && f.kid == "" && f.sandboxDir != "" {
		files.KID = "" // another key: its own thumbprint, not the sandbox key's kid
	}
	if signing {
		if files.SigningKey == "" {
			return nil, usagef("a request signing key is required (--signing-key or --sandbox)")
		}
		if files.SSA == "" && !f.wantsFreshSSA() {
			return nil, usagef("a software statement is required (--ssa or --sandbox)")
		}
		if f.wantsFreshSSA() && env.sb == nil {
			return nil, usagef("--fresh-ssa and --ssa-claim need --sandbox (the directory key signs the SSA)")
		}
	} else {
		files.SSA, files.SigningKey = "", ""
	}
	if _, err := tppclient.DefaultAudience(f.endpoint); err != nil {
		return nil, usageError{err}
	}
	c, err := tppclient.FromFiles(files, f.endpoint, f.audience)
	if err != nil {
		return nil, err
	}
	if signing && f.wantsFreshSSA() {
		claims := env.sb.SSAClaims(env.tpp)
		if err := tppclient.ApplyOverrides(claims, f.ssaClaims); err != nil {
			return nil, usageError{err}
		}
		ssa, err := env.sb.SignSSA(claims)
		if err != nil {
			return nil, err
		}
		if err := c.SetSoftwareStatement(ssa); err != nil {
			return nil, err
		}
	}
	env.client = c

	if st, err := tppclient.LoadState(env.statePath); err == nil {
		env.state, env.fromState = st, true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if cmd.Context() == nil {
		cmd.SetContext(context.Background())
	}
	return env, nil
}

func (f *clientFlags) wantsFreshSSA() bool { return f.freshSSA || len(f.ssaClaims) > 0 }

// managed returns the client_id and token to manage: flags first, then the state file.
func (f *clientFlags) managed(env *clientEnv) (tppclient.State, error) {
	st := tppclient.State{ClientID: f.clientID, RegistrationAccessToken: f.token}
	if st.ClientID == "" {
		st.ClientID = env.state.ClientID
	}
	if st.RegistrationAccessToken == "" && (f.clientID == "" || f.clientID == env.state.ClientID) {
		st.RegistrationAccessToken = env.state.RegistrationAccessToken
	}
	if st.ClientID == "" {
		return st, usagef("no client: pass --client-id or register first (no state file at %s)", env.statePath)
	}
	return st, nil
}

// signedRequest builds the request claims (defaults, then --iat/--exp, then --claim) and
// signs them.
func (f *clientFlags) signedRequest(cmd *cobra.Command, env *clientEnv) ([]byte, error) {
	claims := env.client.Claims()
	now := time.Now()
	if cmd.Flags().Changed("iat") {
		claims["iat"] = now.Add(f.iat).Unix()
	}
	if cmd.Flags().Changed("exp") {
		claims["exp"] = now.Add(f.exp).Unix()
	}
	if err := tppclient.ApplyOverrides(claims, f.claims); err != nil {
		return nil, usageError{err}
	}
	opts := tppclient.SignOptions{Alg: f.alg}
	if cmd.Flags().Changed("kid") {
		kid := f.kid
		opts.KID = &kid
	}
	body, err := env.client.Sign(claims, opts)
	if err != nil {
		return nil, err
	}
	if f.printRequest {
		out := cmd.OutOrStdout()
		hdr, _ := tppclient.DecodeHeader(string(body))
		fmt.Fprintln(out, "Request header:")
		writeJSON(out, hdr)
		fmt.Fprintln(out, "Request claims:")
		writeJSON(out, claims)
	}
	return body, nil
}

func exitFor(res *tppclient.Response) int {
	if res.OK() {
		return ExitOK
	}
	return ExitRejected
}

// printResponse prints the status line and the body (pretty-printed when it is JSON).
func printResponse(w io.Writer, res *tppclient.Response) {
	fmt.Fprintf(w, "HTTP %s\n", strconv.Itoa(res.Status)+" "+http.StatusText(res.Status))
	body := bytes.TrimSpace(res.Body)
	if len(body) == 0 {
		return
	}
	var v any
	if json.Unmarshal(body, &v) == nil {
		writeJSON(w, v)
		return
	}
	fmt.Fprintf(w, "%s\n", body)
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
