# METADATA
# title: Example — only software whose roles this ASPSP serves
# description: |
#   Reads the OB profile's mapping of software roles to scopes, which the gateway gives every
#   policy as data.dcrgate.profile.role_scopes (the `profile { role_scopes ... }` of the
#   Caddyfile merged over the defaults; the profile in Go owns it, a policy only reads it).
#   A registration whose software statement has no role that the mapping lets hold a scope
#   is refused with unapproved_software_statement, before the TPP learns scope by scope that
#   it can hold nothing but openid. Roles match case-insensitively, as in the profile.
#
#   To use it, copy this file into your policy directory and change the package to
#   dcr.rules.served_roles. To test a policy that reads the mapping, give it with
#   `with data.dcrgate.profile.role_scopes as {...}` (see served_roles_test.rego).
package dcr.examples.served_roles

import rego.v1

roles := {upper(r) | some r in object.get(input.software_statement.claims, "software_roles", [])}

served := {upper(role) | some role, scopes in data.dcrgate.profile.role_scopes; count(scopes) > 0}

deny contains {
	"rule": "served_roles",
	"error": "unapproved_software_statement",
	"error_description": sprintf("none of the software roles %s may hold a scope here (served: %s)", [concat(" ", sort(roles)), concat(" ", sort(served))]),
} if {
	input.operation in {"register", "update"}
	count(roles & served) == 0
}
