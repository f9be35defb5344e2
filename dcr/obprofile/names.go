package obprofile

import (
	"sort"

	"github.com/dcrgate/dcrgate/dcr"
)

// V31Names maps each OB DCR v3.1 claim name the profile still accepts to its v3.2 name.
// Clients written against v3.1 (and vendors' documentation of it) send tls_client_auth_dn;
// the claim is registered under its v3.2 name, so the policy and the backend see one name,
// and answered under the name the client sent (see SentNames).
var V31Names = map[string]string{
	"tls_client_auth_dn": "tls_client_auth_subject_dn",
}

// v31NamesSorted is V31Names' keys in a fixed order, so that errors do not depend on map order.
var v31NamesSorted = func() []string {
	out := make([]string, 0, len(V31Names))
	for old := range V31Names {
		out = append(out, old)
	}
	sort.Strings(out)
	return out
}()

// CheckV31Names: a claim sent under its OB DCR v3.1 name (V31Names) must be a string and is
// registered under its v3.2 name. Sent under both names, the two values must be the same
// string (a client cannot ask for two subjects at once); then it is registered once.
func CheckV31Names(_ *Config, _ Input, md map[string]any) *dcr.Error {
	for _, old := range v31NamesSorted {
		cur := V31Names[old]
		v, ok, err := stringClaim(md, old)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if w, both := md[cur]; both {
			if ws, isString := w.(string); !isString || ws != v {
				return dcr.BadMetadata("%s (the OB DCR v3.1 name of %s) and %s are both sent with different values; send one of them", old, cur, cur)
			}
		}
		md[cur] = v
		delete(md, old)
	}
	return nil
}

// SentNames reports, for each claim of claims sent under its OB DCR v3.1 name, the names it
// was sent under (the v3.2 name first when both were sent), keyed by its v3.2 name: what the
// responses answer with. nil when every claim came under its v3.2 name.
func SentNames(claims map[string]any) map[string][]string {
	var out map[string][]string
	for _, old := range v31NamesSorted {
		if claims[old] == nil {
			continue
		}
		cur := V31Names[old]
		var names []string
		if claims[cur] != nil {
			names = append(names, cur)
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[cur] = append(names, old)
	}
	return out
}

// sentAs is the name a rule's messages use for the claim name: the OB DCR v3.1 name when the
// client sent only that one, so that the client recognises its own claim.
func sentAs(in Input, name string) string {
	if in.Claims[name] != nil {
		return name
	}
	for _, old := range v31NamesSorted {
		if V31Names[old] == name && in.Claims[old] != nil {
			return old
		}
	}
	return name
}
