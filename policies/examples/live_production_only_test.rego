package dcr.examples.live_production_only_test

import rego.v1

import data.dcr.examples.live_production_only as rule
import data.dcr.fixtures

test_sandbox_environment_not_checked if {
	count(rule.deny) == 0 with input as fixtures.register_input
}

test_test_software_in_production_denied if {
	some d in rule.deny with input as fixtures.register_input with data.dcr.config.environment as "production"
	d.error == "unapproved_software_statement"
}

test_live_sandbox_software_in_production_denied if {
	count(rule.deny) == 1 with input as fixtures.with_ssa({"software_mode": "Live"})
		with data.dcr.config.environment as "production"
}

test_live_production_software_allowed if {
	count(rule.deny) == 0 with input as fixtures.with_ssa({"software_mode": "Live", "software_environment": "production"})
		with data.dcr.config.environment as "production"
}
