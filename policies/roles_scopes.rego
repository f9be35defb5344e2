# METADATA
# title: Scopes allowed by the software's roles
# description: |
#   On register and update, every scope of the metadata to register must be allowed by one of
#   the SSA's software_roles (data.dcr.config.role_scopes) or be always allowed
#   (data.dcr.config.always_allowed_scopes). The Go OB profile applies the same rule with its
#   own configuration; this one is the operator's, editable as data.
package dcr.rules.roles_scopes

import rego.v1

cfg := data.dcr.config

roles := r if {
	r := input.software_statement.claims.software_roles
	is_array(r)
}

roles := [r] if {
	r := input.software_statement.claims.software_roles
	is_string(r)
}

allowed contains s if some s in cfg.always_allowed_scopes

allowed contains s if {
	some role in roles
	some s in object.get(cfg.role_scopes, role, [])
}

requested contains s if {
	some s in split(object.get(input.metadata, "scope", ""), " ")
	s != ""
}

deny contains {
	"rule": "roles_scopes",
	"error": "invalid_client_metadata",
	"error_description": sprintf("scope %s is not allowed for software roles %s", [concat(" ", sort(excess)), concat(" ", roles)]),
} if {
	input.operation in {"register", "update"}
	excess := requested - allowed
	count(excess) > 0
}
