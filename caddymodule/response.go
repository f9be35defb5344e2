package caddymodule

import (
	"net/http"
	"sync"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
	"github.com/dcrgate/dcrgate/internal/jsonenc"
)

// registrationResponse is the OB DCR v3.2 answer for a stored registration; the shape is
// dcr/obresponse's (metadata, flattened SSA claims, the names the client sent, the
// server-assigned attributes).
func registrationResponse(rec *dcr.Registration, creds map[string]any, endpointURL string) map[string]any {
	return obresponse.Build(rec, creds, endpointURL)
}

// writeJSON writes body as json.NewEncoder(w).Encode writes it (the same bytes: members in
// key order, HTML characters escaped, a final newline, one Write), by internal/jsonenc, which
// walks the maps, slices, strings and numbers of a registration response itself:
// encoding/json's reflection over a map of interfaces and its sorting of reflected keys were
// a tenth of a registration's handler CPU outside the cryptography and the store.
func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Cache-Control", "no-store")
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	buf := responseBuffers.Get().(*[]byte)
	b, err := jsonenc.Append((*buf)[:0], body)
	// As before, a body encoding/json cannot encode writes nothing.
	if err == nil {
		b = append(b, '\n')
		_, _ = w.Write(b)
	}
	if cap(b) <= maxPooledResponse {
		*buf = b
		responseBuffers.Put(buf)
	}
}

// maxPooledResponse is the largest response buffer kept for reuse.
const maxPooledResponse = 64 << 10

var responseBuffers = sync.Pool{New: func() any { return new([]byte) }}
