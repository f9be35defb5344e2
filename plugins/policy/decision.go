package policy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dcrgate/dcrgate/dcr"
)

// Decision is a policy's answer, as documented in docs/policies.md: a bare boolean, or an
// object {allow, error, error_description, metadata, reasons}.
type Decision struct {
	Allow            bool           `json:"allow"`
	Error            string         `json:"error,omitempty"`
	ErrorDescription string         `json:"error_description,omitempty"`
	Metadata         map[string]any `json:"metadata,omitempty"`
	Reasons          []string       `json:"reasons,omitempty"`
	// PolicyError is the error code the policy returned when it was not one the gateway
	// sends (Error is then invalid_client_metadata); kept for the decision log.
	PolicyError string `json:"policy_error,omitempty"`
}

// DeniedErrorCodes are the codes a denial may carry (RFC 7591 §3.2.2 and OB DCR); any other
// becomes invalid_client_metadata.
var DeniedErrorCodes = []string{
	dcr.CodeInvalidClientMetadata,
	dcr.CodeInvalidRedirectURI,
	dcr.CodeInvalidSoftwareStatement,
	dcr.CodeUnapprovedSoftwareStatement,
}

// DefaultDenyDescription is sent when a denial has no error_description.
const DefaultDenyDescription = "the registration was refused by the registration policy"

// ParseDecision interprets a decision value. A value of another shape, or an object whose
// allow is not a boolean, is an error (the gateway then fails closed).
func ParseDecision(v any) (*Decision, error) {
	switch v := v.(type) {
	case bool:
		d := &Decision{Allow: v}
		d.normalize()
		return d, nil
	case map[string]any:
		d := &Decision{}
		allow, ok := v["allow"].(bool)
		if !ok {
			return nil, fmt.Errorf("the decision object has no boolean allow (got %s)", describe(v["allow"]))
		}
		d.Allow = allow
		for k, f := range v {
			switch k {
			case "allow":
			case "error":
				s, ok := f.(string)
				if !ok {
					return nil, fmt.Errorf("decision error must be a string (got %s)", describe(f))
				}
				d.Error = s
			case "error_description":
				s, ok := f.(string)
				if !ok {
					return nil, fmt.Errorf("decision error_description must be a string (got %s)", describe(f))
				}
				d.ErrorDescription = s
			case "metadata":
				m, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("decision metadata must be an object (got %s)", describe(f))
				}
				if len(m) > 0 {
					d.Metadata = m
				}
			case "reasons":
				list, ok := f.([]any)
				if !ok {
					return nil, fmt.Errorf("decision reasons must be an array (got %s)", describe(f))
				}
				for _, r := range list {
					if s, ok := r.(string); ok {
						d.Reasons = append(d.Reasons, s)
					} else {
						b, _ := json.Marshal(r)
						d.Reasons = append(d.Reasons, string(b))
					}
				}
			default:
				// Unknown fields are the author's own annotations; they are ignored.
			}
		}
		d.normalize()
		return d, nil
	default:
		return nil, fmt.Errorf("the decision must be a boolean or an object (got %s)", describe(v))
	}
}

func (d *Decision) normalize() {
	if d.Allow {
		d.Error, d.ErrorDescription = "", ""
		return
	}
	if !slices.Contains(DeniedErrorCodes, d.Error) {
		if d.Error != "" {
			d.PolicyError = d.Error
		}
		d.Error = dcr.CodeInvalidClientMetadata
	}
	if strings.TrimSpace(d.ErrorDescription) == "" {
		d.ErrorDescription = DefaultDenyDescription
	}
}

// Rejection is the answer to a denial: 400 with the decision's error on register and update;
// 403 on read and delete (RFC 7592: the client may not act on its record).
func (d *Decision) Rejection(op dcr.Operation) *dcr.Error {
	status := http.StatusBadRequest
	if op == dcr.OpRead || op == dcr.OpDelete {
		status = http.StatusForbidden
	}
	return &dcr.Error{Status: status, Code: d.Error, Description: d.ErrorDescription}
}

func describe(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		return fmt.Sprintf("a %T", v)
	}
	return string(b)
}
