# METADATA
# title: Example — per-organisation scope ceilings
# description: |
#   data.dcr.config.org_scope_ceilings maps an org_id to the most it may hold, e.g.
#   {"0015800001HQQrZAAX": ["openid", "accounts"]}. A registration asking for more is not
#   refused: its scope is narrowed to the ceiling by a metadata override, and the narrowed
#   scope is what gets registered and returned. An organisation left with only openid is
#   refused. Organisations without an entry are not limited.
#
#   To use it, copy this file into your policy directory and change the package to
#   dcr.rules.org_scope_ceilings.
package dcr.examples.org_scope_ceilings

import rego.v1

ceiling := data.dcr.config.org_scope_ceilings[input.software_statement.claims.org_id]

requested := [s | some s in split(object.get(input.metadata, "scope", ""), " "); s != ""]

granted := [s | some s in requested; s in ceiling]

metadata := {"scope": concat(" ", granted)} if {
	input.operation in {"register", "update"}
	ceiling
	count(granted) < count(requested)
	count({s | some s in granted} - {"openid"}) > 0
}

deny contains {
	"rule": "org_scope_ceilings",
	"error": "invalid_client_metadata",
	"error_description": sprintf("organisation %s may not hold any of the scopes %s", [input.software_statement.claims.org_id, concat(" ", requested)]),
} if {
	input.operation in {"register", "update"}
	ceiling
	count({s | some s in granted} - {"openid"}) == 0
}
