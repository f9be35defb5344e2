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
	"time"

	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	"github.com/dcrgate/dcrgate/plugins/policy"
)

// newPolicyCmd is `caddy dcr policy`: tools for policy authors.
func newPolicyCmd(x *exiter) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Evaluate registration policies and build their input", Args: cobra.ArbitraryArgs, RunE: x.group}
	cmd.AddCommand(newPolicyEvalCmd(x), newPolicyInputCmd(x))
	return cmd
}

type policyEvalFlags struct {
	modules, data []string
	noDefaults    bool
	decision      string
	input         string
	timeout       time.Duration
}

func newPolicyEvalCmd(x *exiter) *cobra.Command {
	f := &policyEvalFlags{}
	cmd := &cobra.Command{
		Use:   "eval --input FILE [--policy PATH]... [--data PATH]...",
		Short: "Evaluate a policy set for one input and print the decision",
		Long: `Compiles the policy set as the gateway does (the embedded defaults unless
--no-defaults, plus --policy modules and --data documents), evaluates the decision for
the input (a JSON file, or - for stdin; 'caddy dcr policy input' writes one) and prints
what the gateway would do: allow with the status it would answer (201 register, 200 read
and update, 204 delete) or the status and RFC 7591 error of the denial (400 register and
update, 403 read and delete; 503 when no decision could be made), the reasons, the
metadata overrides and the metadata that would be registered. The input's "operation"
must be register, update, read or delete.

Exit status: 0 when allowed, 1 when denied or when no decision could be made (the
gateway answers 503 then), 2 for a usage error.`,
		Args: x.noArgs,
		RunE: x.run(func(cmd *cobra.Command) (int, error) { return f.run(cmd) }),
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.modules, "policy", nil, "Rego file or directory, or embedded:<path> (repeatable)")
	fs.StringArrayVar(&f.data, "data", nil, "JSON or YAML data document or directory (repeatable)")
	fs.BoolVar(&f.noDefaults, "no-defaults", false, "leave out the embedded default policy set and its data")
	fs.StringVar(&f.decision, "decision", policy.DefaultDecision, "decision query")
	fs.StringVar(&f.input, "input", "", "input JSON file, - for stdin (required)")
	fs.DurationVar(&f.timeout, "timeout", policy.DefaultTimeout, "evaluation time budget")
	return cmd
}

// evalResult is what `policy eval` prints.
type evalResult struct {
	Allow              bool           `json:"allow"`
	Status             int            `json:"status"`
	Error              string         `json:"error,omitempty"`
	ErrorDescription   string         `json:"error_description,omitempty"`
	Reasons            []string       `json:"reasons,omitempty"`
	Metadata           map[string]any `json:"metadata,omitempty"`
	RegisteredMetadata map[string]any `json:"registered_metadata,omitempty"`
	Cause              string         `json:"cause,omitempty"`
	Decision           any            `json:"decision,omitempty"`
	Policy             string         `json:"policy"`
	EvalDuration       string         `json:"eval_duration"`
}

func (f *policyEvalFlags) run(cmd *cobra.Command) (int, error) {
	if f.input == "" {
		return ExitUsage, errors.New("--input is required (a JSON file, or - for stdin)")
	}
	raw, err := readInput(cmd, f.input)
	if err != nil {
		return ExitUsage, err
	}
	var input map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&input); err != nil {
		return ExitUsage, fmt.Errorf("input: not a JSON object: %w", err)
	}
	opName, _ := input["operation"].(string)
	op := dcr.Operation(opName)
	allowStatus, ok := successStatus[op]
	if !ok {
		return ExitUsage, fmt.Errorf(`input: "operation" must be register, update, read or delete, not %q`, opName)
	}
	b, err := policy.Load(policy.Sources{Defaults: !f.noDefaults, Modules: f.modules, Data: f.data, Decision: f.decision})
	if err != nil {
		return ExitRejected, err
	}
	ctx := context.Background()
	engine, err := policy.Compile(ctx, b)
	if err != nil {
		return ExitRejected, fmt.Errorf("compiling the policy: %w", err)
	}
	evalCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	value, err := engine.Eval(evalCtx, input)
	res := evalResult{Policy: engine.Hash()[:12], EvalDuration: time.Since(start).String(), Decision: value}
	var d *policy.Decision
	if err == nil {
		d, err = policy.ParseDecision(value)
	}
	md, _ := input["metadata"].(map[string]any)
	v := policy.Judge(op, md, d, err, errors.Is(evalCtx.Err(), context.DeadlineExceeded))
	res.Allow, res.Status, res.RegisteredMetadata = v.Err == nil, allowStatus, v.Metadata
	if v.Decision != nil {
		res.Metadata, res.Reasons = v.Decision.Metadata, v.Decision.Reasons
	}
	if v.Err != nil {
		res.Status, res.Error, res.ErrorDescription = v.Err.Status, v.Err.Code, v.Err.Description
		if v.Err.Cause != nil {
			res.Cause = v.Err.Cause.Error()
		}
	}
	writeJSON(cmd.OutOrStdout(), res)
	if res.Allow {
		return ExitOK, nil
	}
	return ExitRejected, errRejectedByPolicy
}

var errRejectedByPolicy = errors.New("the policy did not allow the request")

// successStatus is what the gateway answers when the policy allows an operation (and every
// later stage succeeds): RFC 7591 §3.2.1 for register, RFC 7592 §2 for the rest.
var successStatus = map[dcr.Operation]int{
	dcr.OpRegister: http.StatusCreated,
	dcr.OpRead:     http.StatusOK,
	dcr.OpUpdate:   http.StatusOK,
	dcr.OpDelete:   http.StatusNoContent,
}

func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(name)
}

type policyInputFlags struct {
	sandboxDir    string
	tpp           int
	operation     string
	endpoint      string
	claims        []string
	ssaClaims     []string
	registrations int
	clientID      string
	// deniedOrg, deniedSoftware are input.denied: the org or software struck off.
	deniedOrg, deniedSoftware bool
}

func newPolicyInputCmd(x *exiter) *cobra.Command {
	f := &policyInputFlags{}
	cmd := &cobra.Command{
		Use:   "input --sandbox DIR [--tpp N] [--operation register|update|read|delete] [--claim k=v]...",
		Short: "Print the policy input the gateway builds for a sandbox TPP's request",
		Long: `Builds the request 'caddy dcr register' would send for a sandbox TPP (with --claim
and --ssa-claim changes), runs the OB profile rules over it with their defaults, and prints
the input a policy sees, exactly as the gateway builds it (request headers and remote
address aside, which come from the live connection). Feed it to 'caddy dcr policy eval'.

For the input of a live request, run the gateway with debug logging: the policy protection
logs every input it evaluates ("policy input", with the decision_id of its decision line).`,
		Args: x.noArgs,
		RunE: x.run(func(cmd *cobra.Command) (int, error) { return f.run(cmd) }),
	}
	fs := cmd.Flags()
	fs.StringVar(&f.sandboxDir, "sandbox", "", "sandbox directory (required)")
	fs.IntVar(&f.tpp, "tpp", 1, "TPP number within the sandbox")
	fs.StringVar(&f.operation, "operation", string(dcr.OpRegister), "register, update, read or delete")
	fs.StringVar(&f.endpoint, "endpoint", defaultEndpoint, "registration endpoint URL")
	fs.StringArrayVar(&f.claims, "claim", nil, "set a request claim: name=value (JSON if it parses), -name removes; repeatable")
	fs.StringArrayVar(&f.ssaClaims, "ssa-claim", nil, "set a software statement claim, like --claim; repeatable")
	fs.IntVar(&f.registrations, "registrations", 0, "registrations_for_software (live registrations of the software_id besides this one)")
	fs.StringVar(&f.clientID, "client-id", "example-client-id", "client_id of the registration on update, read and delete")
	fs.BoolVar(&f.deniedOrg, "denied-org", false, "input.denied.org: the TPP's org_id is struck off (on the deny list)")
	fs.BoolVar(&f.deniedSoftware, "denied-software", false, "input.denied.software: the TPP's software_id is struck off")
	return cmd
}

func (f *policyInputFlags) run(cmd *cobra.Command) (int, error) {
	op := dcr.Operation(f.operation)
	switch op {
	case dcr.OpRegister, dcr.OpUpdate, dcr.OpRead, dcr.OpDelete:
	default:
		return ExitUsage, fmt.Errorf("--operation must be register, update, read or delete, not %q", f.operation)
	}
	if f.sandboxDir == "" {
		return ExitUsage, errors.New("--sandbox is required")
	}
	sb, err := sandbox.Load(f.sandboxDir)
	if err != nil {
		return ExitRejected, err
	}
	tpp := sb.TPP(f.tpp)
	if tpp == nil {
		return ExitUsage, fmt.Errorf("the sandbox has no TPP %d (it has %d)", f.tpp, len(sb.TPPs))
	}
	aud, err := tppclient.DefaultAudience(f.endpoint)
	if err != nil {
		return ExitUsage, err
	}
	c, err := tppclient.FromSandbox(sb, tpp, f.endpoint, aud)
	if err != nil {
		return ExitRejected, err
	}
	certs, err := sandbox.ReadCertificates(tpp.TransportCert)
	if err != nil {
		return ExitRejected, err
	}
	ssaClaims, err := tppclient.DecodeClaims(c.SoftwareStatement)
	if err != nil {
		return ExitRejected, err
	}
	if err := tppclient.ApplyOverrides(ssaClaims, f.ssaClaims); err != nil {
		return ExitUsage, err
	}
	claims := c.Claims()
	if err := tppclient.ApplyOverrides(claims, f.claims); err != nil {
		return ExitUsage, err
	}
	// As the gateway sees them: decoded from JSON, numbers as json.Number.
	if err := jsonRoundTrip(&ssaClaims); err != nil {
		return ExitRejected, err
	}
	if err := jsonRoundTrip(&claims); err != nil {
		return ExitRejected, err
	}
	ssa := &dcr.SoftwareStatement{Claims: ssaClaims, Directory: sb.DirectoryIssuer, SoftwareID: tpp.SoftwareID,
		OrgID: tpp.OrgID, Roles: stringsOf(ssaClaims["software_roles"]), RedirectURIs: stringsOf(ssaClaims["software_redirect_uris"])}
	r, err := http.NewRequest(methodOf(op), f.endpoint, nil)
	if err != nil {
		return ExitUsage, err
	}
	x := &dcr.Exchange{Operation: op, Request: r, Now: time.Now(), ClientCert: certs[0]}
	if op == dcr.OpRegister || op == dcr.OpUpdate {
		r.Header.Set("Content-Type", tppclient.ContentTypeJOSE)
		x.RequestClaims, x.SoftwareStatement = claims, ssa
		md, derr := obprofile.Apply(nil, obprofile.Input{Claims: claims, SSA: ssa, ClientCert: certs[0]})
		if derr != nil {
			return ExitRejected, fmt.Errorf("the gateway would refuse this request before the policy: %s: %s", derr.Code, derr.Description)
		}
		x.Metadata = md
	}
	if op != dcr.OpRegister {
		x.ClientID = f.clientID
		r.URL.Path += "/" + f.clientID
		r.Header.Set("Authorization", "Bearer "+policy.Masked)
		x.Existing = &dcr.Registration{ClientID: f.clientID, Version: 1, SoftwareID: tpp.SoftwareID, OrgID: tpp.OrgID,
			Metadata: x.Metadata, SSAClaims: ssaClaims, Directory: sb.DirectoryIssuer, CertSubject: certs[0].Subject.String(),
			IssuedAt: x.Now, UpdatedAt: x.Now}
		if x.Existing.Metadata == nil {
			x.Existing.Metadata, _ = obprofile.Apply(nil, obprofile.Input{Claims: claims, SSA: ssa, ClientCert: certs[0]})
		}
	}
	in := policy.Input(x, f.registrations)
	in["denied"] = map[string]any{"org": f.deniedOrg, "software": f.deniedSoftware, "reason": ""}
	writeJSON(cmd.OutOrStdout(), in)
	return ExitOK, nil
}

func methodOf(op dcr.Operation) string {
	switch op {
	case dcr.OpUpdate:
		return http.MethodPut
	case dcr.OpRead:
		return http.MethodGet
	case dcr.OpDelete:
		return http.MethodDelete
	}
	return http.MethodPost
}

func jsonRoundTrip(m *map[string]any) error {
	b, err := json.Marshal(*m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(m)
}

func stringsOf(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	case string:
		out = append(out, v)
	}
	return out
}
