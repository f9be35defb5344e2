# METADATA
# title: At most N registrations per software statement
# description: |
#   On register, the software_id must hold fewer than
#   data.dcr.config.max_registrations_per_software (default 10) live registrations.
#   input.registrations_for_software counts them from the store (on update/read/delete it
#   excludes the registration acted on, so an update never counts against the limit).
package dcr.rules.registrations_limit

import rego.v1

max_registrations := data.dcr.config.max_registrations_per_software

deny contains {
	"rule": "registrations_limit",
	"error": "unapproved_software_statement",
	"error_description": sprintf("software_id %s already has %d registrations (at most %d)", [input.software_statement.claims.software_id, input.registrations_for_software, max_registrations]),
} if {
	input.operation == "register"
	input.registrations_for_software >= max_registrations
}
