package dcr.rules.software_mode_test

import rego.v1

import data.dcr.fixtures
import data.dcr.rules.software_mode

test_test_software_in_sandbox_allowed if {
	count(software_mode.deny) == 0 with input as fixtures.register_input
}

test_live_software_in_sandbox_allowed if {
	count(software_mode.deny) == 0 with input as fixtures.with_ssa({"software_mode": "Live"})
}

test_test_software_in_production_denied if {
	some d in software_mode.deny with input as fixtures.register_input
		with data.dcr.config.environment as "production"
	d.error == "unapproved_software_statement"
	contains(d.error_description, "production")
}

test_live_software_in_production_allowed if {
	count(software_mode.deny) == 0 with input as fixtures.with_ssa({"software_mode": "Live"})
		with data.dcr.config.environment as "production"
}

test_unknown_environment_accepts_nothing if {
	count(software_mode.deny) == 1 with input as fixtures.with_ssa({"software_mode": "Live"})
		with data.dcr.config.environment as "staging"
}

test_read_not_checked if {
	count(software_mode.deny) == 0 with input as object.union(fixtures.register_input, {"operation": "read"})
		with data.dcr.config.environment as "production"
}

test_modes_are_data if {
	count(software_mode.deny) == 0 with input as fixtures.register_input
		with data.dcr.config.environment as "production"
		with data.dcr.config.software_modes as {"production": ["Test", "Live"]}
}
