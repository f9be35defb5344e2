package dcrcmd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// idFlags are --org and --software: exactly one names what a strike-off or a lift is about.
type idFlags struct{ org, software string }

func (f *idFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.org, "org", "", "the org_id")
	cmd.Flags().StringVar(&f.software, "software", "", "the software_id")
}

// target is the admin API's name and the id of the one flag given.
func (f *idFlags) target() (string, string, error) {
	switch {
	case (f.org == "") == (f.software == ""):
		return "", "", usagef("give exactly one of --org ID and --software ID")
	case f.org != "":
		return "org_id", f.org, nil
	}
	return "software_id", f.software, nil
}

type denyRow struct {
	Kind      string    `json:"kind"`
	ID        string    `json:"id"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
}

func newClientsRevokeCmd(x *exiter) *cobra.Command {
	ids := &idFlags{}
	var reason string
	cmd := adminCmd(x, "revoke --org ID | --software ID [--reason TEXT] [flags]",
		"Strike off an org or software: delete all its registrations and refuse new ones until lifted (POST /dcr/revocations)",
		x.noArgs, func(cmd *cobra.Command, f *adminFlags, _ []string) (int, error) {
			kind, id, err := ids.target()
			if err != nil {
				return ExitUsage, err
			}
			var res struct {
				Kind    string   `json:"kind"`
				ID      string   `json:"id"`
				Created bool     `json:"deny_entry_created"`
				Entry   denyRow  `json:"deny_entry"`
				Deleted []string `json:"deleted"`
				Failed  []struct {
					ClientID    string `json:"client_id"`
					Status      int    `json:"status"`
					Code        string `json:"error"`
					Description string `json:"error_description"`
				} `json:"failed"`
			}
			raw, callErr := f.call(http.MethodPost, "/dcr/revocations", url.Values{}, map[string]string{kind: id, "reason": reason}, &res)
			if callErr != nil {
				// A partial strike-off answers an error with its results: show them.
				if raw == nil || json.Unmarshal(raw, &res) != nil || res.ID == "" {
					return ExitRejected, callErr
				}
			}
			if done, err := f.printJSON(cmd, raw); done {
				if callErr != nil {
					return ExitRejected, callErr
				}
				return ExitOK, err
			}
			out := cmd.OutOrStdout()
			state := "recorded"
			if !res.Created {
				state = "already recorded"
			}
			fmt.Fprintf(out, "Struck off %s %s (deny list entry %s, reason %q)\n", res.Kind, res.ID, state, res.Entry.Reason)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tRESULT")
			for _, c := range res.Deleted {
				fmt.Fprintf(tw, "%s\tdeleted\n", c)
			}
			for _, c := range res.Failed {
				fmt.Fprintf(tw, "%s\tNOT deleted: %d %s: %s\n", c.ClientID, c.Status, c.Code, c.Description)
			}
			tw.Flush()
			fmt.Fprintf(out, "%d deleted, %d not deleted\n", len(res.Deleted), len(res.Failed))
			if callErr != nil {
				return ExitRejected, fmt.Errorf("%w (run the same command again to finish)", callErr)
			}
			return ExitOK, nil
		})
	ids.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "struck off by the operator", "why (kept in the deny list, the audit log and each client's history)")
	return cmd
}

func newClientsDenyListCmd(x *exiter) *cobra.Command {
	return adminCmd(x, "denylist [flags]", "The struck-off orgs and software (GET /dcr/revocations)",
		x.noArgs, func(cmd *cobra.Command, f *adminFlags, _ []string) (int, error) {
			var list struct {
				Entries []denyRow `json:"entries"`
			}
			if done, code, err := f.request(cmd, http.MethodGet, "/dcr/revocations", url.Values{}, nil, &list); done {
				return code, err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tID\tSINCE\tBY\tREASON")
			for _, e := range list.Entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Kind, e.ID, e.CreatedAt.UTC().Format(time.RFC3339), dash(e.Actor), e.Reason)
			}
			tw.Flush()
			fmt.Fprintf(out, "%d entries\n", len(list.Entries))
			return ExitOK, nil
		})
}

func newClientsLiftCmd(x *exiter) *cobra.Command {
	ids := &idFlags{}
	cmd := adminCmd(x, "lift --org ID | --software ID [flags]",
		"Lift a deny list entry: the org or software may register again (DELETE /dcr/revocations)",
		x.noArgs, func(cmd *cobra.Command, f *adminFlags, _ []string) (int, error) {
			kind, id, err := ids.target()
			if err != nil {
				return ExitUsage, err
			}
			var res map[string]any
			if done, code, err := f.request(cmd, http.MethodDelete, "/dcr/revocations", url.Values{kind: {id}}, nil, &res); done {
				return code, err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Lifted %s %s: it may register again\n", kind, id)
			return ExitOK, nil
		})
	ids.add(cmd)
	return cmd
}
