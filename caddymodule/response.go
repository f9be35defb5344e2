package caddymodule

import (
	"encoding/json"
	"net/http"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
)

// registrationResponse is the OB DCR v3.2 answer for a stored registration; the shape is
// dcr/obresponse's (metadata, flattened SSA claims, the names the client sent, the
// server-assigned attributes).
func registrationResponse(rec *dcr.Registration, creds map[string]any, endpointURL string) map[string]any {
	return obresponse.Build(rec, creds, endpointURL)
}

func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Cache-Control", "no-store")
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
