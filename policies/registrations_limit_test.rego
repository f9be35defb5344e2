package dcr.rules.registrations_limit_test

import rego.v1

import data.dcr.fixtures
import data.dcr.rules.registrations_limit

test_below_limit_allowed if {
	count(registrations_limit.deny) == 0 with input as object.union(fixtures.register_input, {"registrations_for_software": 9})
}

test_at_limit_denied if {
	some d in registrations_limit.deny with input as object.union(fixtures.register_input, {"registrations_for_software": 10})
	d.error == "unapproved_software_statement"
	contains(d.error_description, "at most 10")
}

test_limit_is_data if {
	count(registrations_limit.deny) == 1 with input as object.union(fixtures.register_input, {"registrations_for_software": 1})
		with data.dcr.config.max_registrations_per_software as 1
}

test_update_never_counts if {
	count(registrations_limit.deny) == 0 with input as object.union(fixtures.register_input, {"operation": "update", "registrations_for_software": 50})
}
