# METADATA
# title: Software modes allowed in this environment
# description: |
#   On register and update, the SSA's software_mode must be one of the modes allowed for the
#   gateway's environment: data.dcr.config.software_modes[data.dcr.config.environment]
#   (default, in data.json: environment sandbox, where Test and Live are accepted; production
#   accepts only Live). An environment without an entry accepts no software at all. This rule is
#   the one owner of the accepted modes: the software_statement protection only requires the
#   claim to be a non-empty string (its per-directory software_modes is deprecated).
package dcr.rules.software_mode

import rego.v1

cfg := data.dcr.config

modes := object.get(cfg.software_modes, cfg.environment, [])

# The body's first expressions are those that fail on almost every call, the operation test
# last: a body stops at its first false expression (docs/policies.md, "Rules that cost little").
deny contains {
	"rule": "software_mode",
	"error": "unapproved_software_statement",
	"error_description": sprintf("software_mode %q is not accepted in the %s environment", [mode, cfg.environment]),
} if {
	mode := object.get(input.software_statement.claims, "software_mode", "")
	not mode in modes
	input.operation in {"register", "update"}
}
