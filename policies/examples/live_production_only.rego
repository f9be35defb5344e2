# METADATA
# title: Example — only Live, production software in production
# description: |
#   Stricter than the default software_mode rule: when the gateway runs in production
#   (data.dcr.config.environment), the SSA must be Live software issued for the production
#   environment (software_environment), so a sandbox SSA signed by a production directory
#   key cannot register either.
#
#   To use it, copy this file into your policy directory and change the package to
#   dcr.rules.live_production_only (the default decision collects data.dcr.rules.*).
package dcr.examples.live_production_only

import rego.v1

claims := input.software_statement.claims

deny contains {
	"rule": "live_production_only",
	"error": "unapproved_software_statement",
	"error_description": sprintf("only Live production software may register here (software_mode %q, software_environment %q)", [object.get(claims, "software_mode", ""), object.get(claims, "software_environment", "")]),
} if {
	input.operation in {"register", "update"}
	data.dcr.config.environment == "production"
	not live_production
}

live_production if {
	claims.software_mode == "Live"
	claims.software_environment == "production"
}
