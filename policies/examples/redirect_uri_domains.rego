# METADATA
# title: Example — redirect URIs only on the organisation's registered domains
# description: |
#   data.dcr.config.org_domains maps an org_id to the DNS domains it registered with the
#   operator, e.g. {"0015800001HQQrZAAX": ["tpp1.example.com"]}. Every redirect_uri must be
#   https on one of them or a subdomain. An organisation without an entry cannot register
#   (fail closed: unknown organisations have no domains).
#
#   To use it, copy this file into your policy directory and change the package to
#   dcr.rules.redirect_uri_domains.
package dcr.examples.redirect_uri_domains

import rego.v1

domains := object.get(data.dcr.config.org_domains, input.software_statement.claims.org_id, [])

host(uri) := lower(m[0][1]) if {
	m := regex.find_all_string_submatch_n(`^https://([^/:?#@]+)(:[0-9]+)?([/?#]|$)`, uri, 1)
	count(m) == 1
}

on_registered_domain(uri) if {
	h := host(uri)
	some d in domains
	h == lower(d)
}

on_registered_domain(uri) if {
	h := host(uri)
	some d in domains
	endswith(h, concat("", [".", lower(d)]))
}

deny contains {
	"rule": "redirect_uri_domains",
	"error": "invalid_redirect_uri",
	"error_description": sprintf("redirect_uri %s is not on a domain registered for organisation %s", [uri, input.software_statement.claims.org_id]),
} if {
	input.operation in {"register", "update"}
	some uri in object.get(input.metadata, "redirect_uris", [])
	not on_registered_domain(uri)
}
