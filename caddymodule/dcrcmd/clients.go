package dcrcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// newClientsCmd is `caddy dcr clients list|show|delete|history|revoke|denylist|lift`: the operator's view of the
// registry over admin.api.dcr on Caddy's admin endpoint (as `caddy reload` talks to it).
func newClientsCmd(x *exiter) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients <list|show|delete|history|revoke|denylist|lift>",
		Short: "The registry, over Caddy's admin API (admin.api.dcr)",
		Long: `List, show, delete and trace registrations, strike off an org or software
(revoke), and read or lift the deny list, through admin.api.dcr on Caddy's
admin endpoint (--address, default localhost:2019, as for 'caddy reload').
Output is a table by default and the API's JSON with --json. With several dcr
handlers, --endpoint (and --server) choose one.`,
		Args: cobra.ArbitraryArgs,
		RunE: x.group,
	}
	cmd.AddCommand(newClientsListCmd(x), newClientsShowCmd(x), newClientsDeleteCmd(x), newClientsHistoryCmd(x),
		newClientsRevokeCmd(x), newClientsDenyListCmd(x), newClientsLiftCmd(x))
	return cmd
}

// adminFlags are the flags every clients subcommand takes.
type adminFlags struct {
	address, endpoint, server string
	json                      bool
}

func (f *adminFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.address, "address", "localhost:2019", "the address of Caddy's admin endpoint")
	cmd.Flags().StringVar(&f.endpoint, "endpoint", "", "the dcr handler's endpoint path, when there are several")
	cmd.Flags().StringVar(&f.server, "server", "", "the HTTP server name (srv0, ...), when two servers share an endpoint")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
}

// call sends one admin API request (with in as its JSON body, unless nil) and decodes its
// JSON answer into out; the raw body is returned for --json. On an HTTP error the raw body is
// returned too, with the error, for commands whose error answers carry results.
func (f *adminFlags) call(method, path string, params url.Values, in, out any) ([]byte, error) {
	if f.endpoint != "" {
		params.Set("endpoint", f.endpoint)
	}
	if f.server != "" {
		params.Set("server", f.server)
	}
	uri := path
	if len(params) > 0 {
		uri += "?" + params.Encode()
	}
	var reqBody io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		reqBody = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(f.address, method, uri, nil, reqBody)
	if err != nil {
		raw, rerr := readableAdminError(err)
		return raw, rerr
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("the admin endpoint answered something else than JSON (is admin.api.dcr in this Caddy?): %.200q", body)
	}
	return body, nil
}

var adminErrorBody = regexp.MustCompile(`HTTP (\d+): (\{.*)$`)

// readableAdminError turns caddycmd's "caddy responded with error: HTTP 404: {json}" into the
// JSON error's description, and returns the JSON.
func readableAdminError(err error) ([]byte, error) {
	m := adminErrorBody.FindStringSubmatch(strings.ReplaceAll(err.Error(), "\n", " "))
	if m == nil {
		return nil, err
	}
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal([]byte(m[2]), &e) != nil || e.Code == "" {
		return nil, err
	}
	return []byte(m[2]), fmt.Errorf("HTTP %s %s: %s", m[1], e.Code, e.Description)
}

// adminCmd is one clients subcommand: its use line, its admin flags, and its body, which
// gets the flags and the positional arguments (checked by args).
func adminCmd(x *exiter, use, short string, args cobra.PositionalArgs, body func(cmd *cobra.Command, f *adminFlags, args []string) (int, error)) *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{Use: use, Short: short, Args: args}
	f.add(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return x.run(func(cmd *cobra.Command) (int, error) { return body(cmd, f, args) })(cmd, args)
	}
	return cmd
}

// request is call for a subcommand body: done when the body has nothing more to do, because
// the call failed (ExitRejected) or --json printed the answer (ExitOK); else out is decoded
// for the table.
func (f *adminFlags) request(cmd *cobra.Command, method, path string, params url.Values, in, out any) (done bool, code int, err error) {
	raw, err := f.call(method, path, params, in, out)
	if err != nil {
		return true, ExitRejected, err
	}
	if done, err := f.printJSON(cmd, raw); done {
		return true, ExitOK, err
	}
	return false, ExitOK, nil
}

// printJSON writes raw for --json and reports whether it did.
func (f *adminFlags) printJSON(cmd *cobra.Command, raw []byte) (bool, error) {
	if !f.json {
		return false, nil
	}
	_, err := cmd.OutOrStdout().Write(raw)
	return true, err
}

// clientRow is what the table shows of a registration.
type clientRow struct {
	ClientID   string    `json:"client_id"`
	Status     string    `json:"status"`
	OrgID      string    `json:"org_id"`
	SoftwareID string    `json:"software_id"`
	ClientName string    `json:"client_name"`
	AuthMethod string    `json:"token_endpoint_auth_method"`
	IssuedAt   time.Time `json:"issued_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func newClientsListCmd(x *exiter) *cobra.Command {
	var org, software, method, status, createdFrom, createdTo, updatedFrom, updatedTo, cursor string
	var limit int
	cmd := adminCmd(x, "list [--org-id ID] [--software-id ID] [--auth-method M] [--status live|deleted] [flags]",
		"List registrations (GET /dcr/clients)", x.noArgs, func(cmd *cobra.Command, f *adminFlags, _ []string) (int, error) {
			params := url.Values{}
			for name, v := range map[string]string{"org_id": org, "software_id": software, "token_endpoint_auth_method": method,
				"status": status, "created_from": createdFrom, "created_to": createdTo, "updated_from": updatedFrom,
				"updated_to": updatedTo, "cursor": cursor} {
				if v != "" {
					params.Set(name, v)
				}
			}
			if cmd.Flags().Changed("limit") {
				params.Set("limit", fmt.Sprint(limit))
			}
			var page struct {
				Clients    []clientRow `json:"clients"`
				NextCursor string      `json:"next_cursor"`
			}
			if done, code, err := f.request(cmd, http.MethodGet, "/dcr/clients", params, nil, &page); done {
				return code, err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tSTATUS\tORG_ID\tSOFTWARE_ID\tNAME\tAUTH_METHOD\tISSUED\tUPDATED")
			for _, c := range page.Clients {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ClientID, c.Status, c.OrgID, c.SoftwareID, dash(c.ClientName),
					dash(c.AuthMethod), c.IssuedAt.UTC().Format(time.RFC3339), c.UpdatedAt.UTC().Format(time.RFC3339))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d client(s)", len(page.Clients))
			if page.NextCursor != "" {
				fmt.Fprintf(out, "; more with --cursor %s", page.NextCursor)
			}
			fmt.Fprintln(out)
			return ExitOK, nil
		})
	fl := cmd.Flags()
	fl.StringVar(&org, "org-id", "", "only this org_id's registrations")
	fl.StringVar(&software, "software-id", "", "only this software_id's registrations")
	fl.StringVar(&method, "auth-method", "", "only this token_endpoint_auth_method")
	fl.StringVar(&status, "status", "", "live (default) or deleted")
	fl.StringVar(&createdFrom, "created-from", "", "issued at or after (RFC 3339)")
	fl.StringVar(&createdTo, "created-to", "", "issued at or before (RFC 3339)")
	fl.StringVar(&updatedFrom, "updated-from", "", "updated at or after (RFC 3339)")
	fl.StringVar(&updatedTo, "updated-to", "", "updated at or before (RFC 3339)")
	fl.StringVar(&cursor, "cursor", "", "start after this client_id (the next_cursor of a previous page)")
	fl.IntVar(&limit, "limit", 0, "page size (default 50, at most 500)")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneClient reads the client_id argument.
func (x *exiter) oneClient(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return x.usage(cmd, fmt.Errorf("want one client_id, got %d arguments", len(args)))
	}
	return nil
}

func clientPath(id string, rest ...string) string {
	return "/dcr/clients/" + strings.Join(append([]string{url.PathEscape(id)}, rest...), "/")
}

func newClientsShowCmd(x *exiter) *cobra.Command {
	return adminCmd(x, "show <client_id> [flags]", "Show one registration, without any secret (GET /dcr/clients/{client_id})",
		x.oneClient, func(cmd *cobra.Command, f *adminFlags, args []string) (int, error) {
			var view map[string]any
			if done, code, err := f.request(cmd, http.MethodGet, clientPath(args[0]), url.Values{}, nil, &view); done {
				return code, err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, k := range []string{"client_id", "status", "version", "org_id", "software_id", "client_name",
				"token_endpoint_auth_method", "directory", "cert_subject", "cert_thumbprint", "upstream",
				"issued_at", "updated_at", "deleted_at"} {
				if v, ok := view[k]; ok {
					fmt.Fprintf(tw, "%s\t%v\n", k, v)
				}
			}
			for _, k := range []string{"metadata", "ssa_claims"} {
				if v, ok := view[k]; ok {
					b, _ := json.Marshal(v)
					fmt.Fprintf(tw, "%s\t%s\n", k, b)
				}
			}
			return ExitOK, tw.Flush()
		})
}

func newClientsDeleteCmd(x *exiter) *cobra.Command {
	return adminCmd(x, "delete <client_id> [flags]",
		"Delete a registration as the operator (DELETE /dcr/clients/{client_id}); at the backend too with an upstream registrar",
		x.oneClient, func(cmd *cobra.Command, f *adminFlags, args []string) (int, error) {
			var res map[string]any
			if done, code, err := f.request(cmd, http.MethodDelete, clientPath(args[0]), url.Values{}, nil, &res); done {
				return code, err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s\n", args[0])
			return ExitOK, nil
		})
}

type historyRow struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	Operation string    `json:"operation"`
	ClientID  string    `json:"client_id"`
	Status    int       `json:"status"`
	Error     string    `json:"error"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
}

func newClientsHistoryCmd(x *exiter) *cobra.Command {
	return adminCmd(x, "history <client_id> [flags]", "A client's lifecycle and its software_id's rejections (GET /dcr/clients/{client_id}/history)",
		x.oneClient, func(cmd *cobra.Command, f *adminFlags, args []string) (int, error) {
			var h struct {
				SoftwareID string       `json:"software_id"`
				Status     string       `json:"status"`
				Events     []historyRow `json:"events"`
				Rejections []historyRow `json:"rejections"`
			}
			if done, code, err := f.request(cmd, http.MethodGet, clientPath(args[0], "history"), url.Values{}, nil, &h); done {
				return code, err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s (%s), software_id %s\n", args[0], h.Status, h.SoftwareID)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tEVENT\tOPERATION\tSTATUS\tERROR\tBY\tREASON")
			rows := append(append([]historyRow(nil), h.Events...), h.Rejections...)
			slices.SortStableFunc(rows, func(a, b historyRow) int { return a.Time.Compare(b.Time) })
			for _, r := range rows {
				by := r.Actor
				if by == "" {
					by = "client"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.Event, dash(r.Operation),
					r.Status, dash(r.Error), by, dash(r.Reason))
			}
			return ExitOK, tw.Flush()
		})
}
