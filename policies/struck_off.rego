# METADATA
# title: Struck-off organisations and software
# description: |
#   On register and update, an org_id or software_id that an operator struck off
#   (admin.api.dcr POST /dcr/revocations, `caddy dcr clients revoke`) is refused until the
#   entry is lifted. The gateway puts what its deny list says in input.denied
#   ({"org": bool, "software": bool, "reason"}); it also refuses a struck-off TPP itself after
#   the policy, so turning this rule off does not let one in (see docs/revocation.md).
package dcr.rules.struck_off

import rego.v1

org_id := id if {
	id := input.software_statement.claims.org_id
} else := id if {
	id := input.existing_registration.org_id
} else := ""

software_id := id if {
	id := input.software_statement.claims.software_id
} else := id if {
	id := input.existing_registration.software_id
} else := ""

deny contains {
	"rule": "struck_off",
	"error": "invalid_software_statement",
	"error_description": sprintf("org_id %q is struck off: its registrations are refused until the gateway's operator lifts it", [org_id]),
} if {
	input.operation in {"register", "update"}
	input.denied.org == true
}

deny contains {
	"rule": "struck_off",
	"error": "invalid_software_statement",
	"error_description": sprintf("software_id %q is struck off: its registrations are refused until the gateway's operator lifts it", [software_id]),
} if {
	input.operation in {"register", "update"}
	input.denied.software == true
}
