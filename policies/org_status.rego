# METADATA
# title: Accepted organisation statuses
# description: |
#   On register and update, the SSA's org_status must be one of data.dcr.config.org_statuses
#   (default ["Active"], in data.json). This rule is the only place the gateway judges
#   org_status: the software_statement protection only requires the claim to be a non-empty
#   string, so a data file that lists "Suspended" lets suspended organisations register.
package dcr.rules.org_status

import rego.v1

# The body's first expressions are those that fail on almost every call, the operation test
# last: a body stops at its first false expression (docs/policies.md, "Rules that cost little").
deny contains {
	"rule": "org_status",
	"error": "unapproved_software_statement",
	"error_description": sprintf("org_status %q is not accepted", [status]),
} if {
	status := object.get(input.software_statement.claims, "org_status", "")
	not status in data.dcr.config.org_statuses
	input.operation in {"register", "update"}
}
