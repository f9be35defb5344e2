# METADATA
# title: Allowed and denied organisations
# description: |
#   On register and update, the SSA's org_id must not be in data.dcr.config.denied_org_ids
#   and, when data.dcr.config.allowed_org_ids is not empty, must be in it.
package dcr.rules.org_lists

import rego.v1

cfg := data.dcr.config

org_id := object.get(input.software_statement.claims, "org_id", "")

# The body's first expressions are those that fail on almost every call, the operation test
# last: a body stops at its first false expression (docs/policies.md, "Rules that cost little").
deny contains {
	"rule": "org_lists",
	"error": "unapproved_software_statement",
	"error_description": sprintf("organisation %s is not allowed to register", [org_id]),
} if {
	count(cfg.denied_org_ids) > 0
	org_id in cfg.denied_org_ids
	input.operation in {"register", "update"}
}

deny contains {
	"rule": "org_lists",
	"error": "unapproved_software_statement",
	"error_description": sprintf("organisation %s is not on the list of allowed organisations", [org_id]),
} if {
	count(cfg.allowed_org_ids) > 0
	not org_id in cfg.allowed_org_ids
	input.operation in {"register", "update"}
}
