# METADATA
# title: The organisation must be Active
# description: |
#   On register and update, the SSA's org_status must be one of data.dcr.config.org_statuses
#   (default ["Active"]).
package dcr.rules.org_status

import rego.v1

deny contains {
	"rule": "org_status",
	"error": "unapproved_software_statement",
	"error_description": sprintf("org_status %q is not accepted", [status]),
} if {
	input.operation in {"register", "update"}
	status := object.get(input.software_statement.claims, "org_status", "")
	not status in data.dcr.config.org_statuses
}
