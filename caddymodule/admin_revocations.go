package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// A strike-off removes a TPP from the registry when a regulator or directory withdraws it:
//
//	POST   /dcr/revocations {"org_id": "..." | "software_id": "...", "reason": "..."}
//	GET    /dcr/revocations                            the deny list
//	DELETE /dcr/revocations?org_id=... | ?software_id=... lift an entry
//
// POST records a deny list entry first, then deletes every live registration of the org or
// software, one by one, as DELETE /dcr/clients/{id} does (at the backend too for an upstream
// registrar). The entry goes first so that nothing registers behind the deletions; a
// registration that commits while they run is refused by the handler's deny list check or
// caught by a second call. The call is idempotent: a second one finds the entry and no
// registrations, deletes nothing and says 0. When deletions fail (a backend that is down),
// the answer is 503/502 and lists which were deleted and which not; the entry stays and a
// retry finishes the job. The resource is named for the act (the TPP's registrations are
// revoked); the deny list is what it leaves behind.

// maxRevocationBody bounds a strike-off request.
const maxRevocationBody = 16 << 10

// revocationRequest is the body of POST /dcr/revocations.
type revocationRequest struct {
	OrgID      string `json:"org_id,omitempty"`
	SoftwareID string `json:"software_id,omitempty"`
	Reason     string `json:"reason"`
}

// failedDeletion is one registration a strike-off could not delete.
type failedDeletion struct {
	ClientID    string `json:"client_id"`
	Status      int    `json:"status"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (a *AdminAPI) revocations(r *http.Request) (int, any) {
	switch r.Method {
	case http.MethodGet:
		return a.denyList(r)
	case http.MethodPost:
		return a.strikeOff(r)
	case http.MethodDelete:
		return a.lift(r)
	}
	return 0, adminMethodNotAllowed(r)
}

func (a *AdminAPI) denyList(r *http.Request) (int, any) {
	reg, aerr := a.selected(r)
	if aerr != nil {
		return 0, aerr
	}
	entries, err := reg.Store.DenyList(r.Context())
	if err != nil {
		return 0, storeUnavailable(err)
	}
	if entries == nil {
		entries = []dcr.DenyEntry{}
	}
	return http.StatusOK, map[string]any{"entries": entries}
}

// readRevocation decodes and checks a strike-off request: one JSON object, no unknown
// members, exactly one of org_id and software_id, a reason.
func readRevocation(r *http.Request) (dcr.DenyEntry, *adminError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return dcr.DenyEntry{}, &adminError{http.StatusUnsupportedMediaType, "invalid_request", "the body must be application/json"}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxRevocationBody))
	dec.DisallowUnknownFields()
	var req revocationRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return dcr.DenyEntry{}, &adminError{http.StatusRequestEntityTooLarge, "invalid_request", "the body is larger than 16 KiB"}
		}
		return dcr.DenyEntry{}, badRequest("the body is not a strike-off request ({\"org_id\" or \"software_id\", \"reason\"}): %s", err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return dcr.DenyEntry{}, badRequest("the body has data after its JSON object")
	}
	e := dcr.DenyEntry{Reason: strings.TrimSpace(req.Reason), Actor: operatorOf(r), CreatedAt: time.Now().UTC()}
	switch {
	case req.OrgID != "" && req.SoftwareID != "":
		return e, badRequest("give org_id or software_id, not both: strike off each on its own")
	case req.OrgID != "":
		e.Kind, e.ID = dcr.DenyOrg, req.OrgID
	case req.SoftwareID != "":
		e.Kind, e.ID = dcr.DenySoftware, req.SoftwareID
	default:
		return e, badRequest("give org_id or software_id")
	}
	if err := e.Validate(); err != nil {
		return e, badRequest("%s", strings.TrimPrefix(err.Error(), "dcr: "))
	}
	return e, nil
}

func (a *AdminAPI) strikeOff(r *http.Request) (int, any) {
	reg, aerr := a.selected(r)
	if aerr != nil {
		return 0, aerr
	}
	entry, aerr := readRevocation(r)
	if aerr != nil {
		return 0, aerr
	}
	ctx := r.Context()
	created, err := reg.Store.AddDenial(ctx, entry, dcr.MaxDenyListEntries)
	switch {
	case errors.Is(err, dcr.ErrDenyListFull):
		return 0, &adminError{http.StatusConflict, "deny_list_full", strings.TrimPrefix(err.Error(), "dcr: ")}
	case err != nil:
		return 0, storeUnavailable(err)
	}
	recorded := entry
	if stored, err := reg.Store.Denials(ctx, orgOf(entry), softwareOf(entry)); err == nil && len(stored) == 1 {
		recorded = stored[0]
	}
	body := map[string]any{"kind": entry.Kind, "id": entry.ID, "deny_entry": recorded, "deny_entry_created": created}

	deleted, failed, err := reg.strikeOffRegistrations(ctx, entry)
	body["deleted"], body["deleted_count"], body["failed"] = deleted, len(deleted), failed
	status := http.StatusOK
	switch {
	case err != nil:
		status = http.StatusServiceUnavailable
		body["error"], body["error_description"] = "temporarily_unavailable",
			"the deny list entry is recorded, but the registrations could not be listed: "+err.Error()+"; retry to finish"
	case len(failed) > 0:
		status = http.StatusServiceUnavailable
		if !slices.ContainsFunc(failed, func(f failedDeletion) bool { return f.Status == http.StatusServiceUnavailable }) {
			status = failed[0].Status
		}
		body["error"], body["error_description"] = "incomplete",
			"the deny list entry is recorded and some registrations are deleted, but not all (see failed); retry to finish"
	}
	reg.audit.recordStrikeOff(entry, created, len(deleted), len(failed), status)
	return status, body
}

func orgOf(e dcr.DenyEntry) string      { return idIf(e, dcr.DenyOrg) }
func softwareOf(e dcr.DenyEntry) string { return idIf(e, dcr.DenySoftware) }

func idIf(e dcr.DenyEntry, kind dcr.DenyKind) string {
	if e.Kind == kind {
		return e.ID
	}
	return ""
}

// strikeOffRegistrations deletes every live registration of the entry's org or software and
// returns which it deleted and which it could not. One that is gone meanwhile is neither.
func (e *publishedRegistry) strikeOffRegistrations(ctx context.Context, entry dcr.DenyEntry) (deleted []string, failed []failedDeletion, err error) {
	var ids []string
	if entry.Kind == dcr.DenyOrg {
		ids, err = e.Store.ListByOrg(ctx, entry.ID)
	} else {
		ids, err = e.Store.ListBySoftware(ctx, entry.ID)
	}
	deleted, failed = []string{}, []failedDeletion{}
	if err != nil {
		return deleted, failed, err
	}
	slices.Sort(ids)
	reason := "struck off: " + entry.Reason
	for _, id := range ids {
		rec, err := e.Store.Get(ctx, id)
		switch {
		case errors.Is(err, dcr.ErrNotFound):
			continue
		case err != nil:
			failed = append(failed, failedDeletion{id, http.StatusServiceUnavailable, "temporarily_unavailable", "the registration store is unavailable"})
			continue
		}
		aerr := e.deleteAudited(ctx, rec, entry.Actor, reason)
		switch {
		case aerr == nil:
			deleted = append(deleted, id)
		case aerr.Status == http.StatusNotFound:
		default:
			failed = append(failed, failedDeletion{id, aerr.Status, aerr.Code, aerr.Description})
		}
	}
	return deleted, failed, nil
}

// lift removes a deny list entry: ?org_id= or ?software_id=.
func (a *AdminAPI) lift(r *http.Request) (int, any) {
	reg, aerr := a.selected(r, string(dcr.DenyOrg), string(dcr.DenySoftware))
	if aerr != nil {
		return 0, aerr
	}
	kind, id, aerr := liftTarget(r.URL.Query())
	if aerr != nil {
		return 0, aerr
	}
	lifted, err := reg.Store.LiftDenial(r.Context(), kind, id)
	if err != nil {
		return 0, storeUnavailable(err)
	}
	reg.audit.recordLift(kind, id, operatorOf(r), lifted)
	if !lifted {
		return 0, &adminError{http.StatusNotFound, "not_found", "the deny list has no entry for " + string(kind) + " " + id}
	}
	return http.StatusOK, map[string]any{"kind": kind, "id": id, "lifted": true}
}

func liftTarget(q url.Values) (dcr.DenyKind, string, *adminError) {
	org, sw := q[string(dcr.DenyOrg)], q[string(dcr.DenySoftware)]
	switch {
	case len(org)+len(sw) != 1:
		return "", "", badRequest("give exactly one org_id or software_id parameter")
	case len(org) == 1 && org[0] != "":
		return dcr.DenyOrg, org[0], nil
	case len(sw) == 1 && sw[0] != "":
		return dcr.DenySoftware, sw[0], nil
	}
	return "", "", badRequest("the org_id or software_id parameter is empty")
}

// recordStrikeOff audits a strike-off as a whole (each deletion has its own line).
func (a *auditor) recordStrikeOff(e dcr.DenyEntry, created bool, deleted, failed, status int) {
	if a == nil {
		return
	}
	a.log.Info("dcr admin strike_off", zap.String("kind", string(e.Kind)), zap.String("id", e.ID),
		zap.String("reason", e.Reason), zap.String("actor", e.Actor), zap.String("via", "admin_api"),
		zap.Bool("deny_entry_created", created), zap.Int("deleted", deleted), zap.Int("failed", failed),
		zap.Int("status", status), zap.String("outcome", outcomeOf(status)))
}

// recordLift audits the lifting of a deny list entry.
func (a *auditor) recordLift(kind dcr.DenyKind, id, actor string, lifted bool) {
	if a == nil {
		return
	}
	a.log.Info("dcr admin lift", zap.String("kind", string(kind)), zap.String("id", id),
		zap.String("actor", actor), zap.String("via", "admin_api"), zap.Bool("lifted", lifted))
}
