package caddymodule

import (
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/internal/deprecated"
)

// UnmarshalJSON reads the handler's JSON config strictly (an unknown field is an error, as
// with every Caddy module) and takes the previous release's names with a deprecation
// warning (README "Renamed options"):
//
//	max_body_size           -> max_size
//	profile.signing_algs    -> profile.algorithms
//	storage.backend         -> storage.storage (the inline key naming the store module)
//
// An option set under both its names is an error rather than a guess.
func (h *Handler) UnmarshalJSON(b []byte) error {
	type plain Handler
	var in struct {
		*plain
		MaxBodySize *int64         `json:"max_body_size,omitempty"`
		Profile     *legacyProfile `json:"profile,omitempty"`
	}
	in.plain = (*plain)(h)
	in.Profile = &legacyProfile{Config: &h.Profile}
	if err := caddy.StrictUnmarshalJSON(b, &in); err != nil {
		return err
	}
	if in.MaxBodySize != nil {
		deprecated.JSON("http.handlers.dcr", "max_body_size", "max_size")
		if h.MaxBodySize != 0 {
			return fmt.Errorf("dcr: %w", &deprecated.BothError{Old: "max_body_size", New: "max_size"})
		}
		h.MaxBodySize = *in.MaxBodySize
	}
	if in.Profile != nil && in.Profile.SigningAlgs != nil {
		deprecated.JSON("http.handlers.dcr", "profile.signing_algs", "profile.algorithms")
		if len(h.Profile.SigningAlgs) > 0 {
			return fmt.Errorf("dcr: profile: %w", &deprecated.BothError{Old: "signing_algs", New: "algorithms"})
		}
		h.Profile.SigningAlgs = in.Profile.SigningAlgs
	}
	raw, renamed, err := deprecated.RenameKey(h.StorageRaw, "backend", "storage")
	if err != nil {
		return fmt.Errorf("dcr: storage: %w", err)
	}
	if renamed {
		deprecated.JSON("http.handlers.dcr", "storage.backend", "storage.storage")
		h.StorageRaw = raw
	}
	return nil
}

// legacyProfile is the profile with its previous release's field names.
type legacyProfile struct {
	*obprofile.Config
	SigningAlgs []string `json:"signing_algs,omitempty"`
}

// Interface guards
var _ json.Unmarshaler = (*Handler)(nil)
