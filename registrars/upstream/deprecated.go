package upstream

import (
	"encoding/json"
	"errors"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/internal/deprecated"
)

// UnmarshalJSON reads the registrar's JSON config strictly and takes the previous release's
// max_response_size (now max_size) with a deprecation warning.
func (u *Upstream) UnmarshalJSON(b []byte) error {
	type plain Upstream
	var in struct {
		*plain
		MaxResponseSize *int64 `json:"max_response_size,omitempty"`
	}
	in.plain = (*plain)(u)
	if err := caddy.StrictUnmarshalJSON(b, &in); err != nil {
		return err
	}
	if in.MaxResponseSize != nil {
		deprecated.JSON("dcr.registrars.upstream", "max_response_size", "max_size")
		if u.MaxResponseSize != 0 {
			return errors.New("upstream registrar: " + (&deprecated.BothError{Old: "max_response_size", New: "max_size"}).Error())
		}
		u.MaxResponseSize = *in.MaxResponseSize
	}
	return nil
}

// Interface guards
var _ json.Unmarshaler = (*Upstream)(nil)
