package dcr.rules.org_lists_test

import rego.v1

import data.dcr.fixtures
import data.dcr.rules.org_lists

test_empty_lists_allow_everyone if {
	count(org_lists.deny) == 0 with input as fixtures.register_input
}

test_denied_org if {
	some d in org_lists.deny with input as fixtures.register_input
		with data.dcr.config.denied_org_ids as ["0015800001HQQrZAAX"]
	d.error == "unapproved_software_statement"
	contains(d.error_description, "not allowed")
}

test_allow_list_admits_listed if {
	count(org_lists.deny) == 0 with input as fixtures.register_input
		with data.dcr.config.allowed_org_ids as ["0015800001HQQrZAAX"]
}

test_allow_list_refuses_others if {
	some d in org_lists.deny with input as fixtures.register_input
		with data.dcr.config.allowed_org_ids as ["0015800001ZZZZZZZZ"]
	contains(d.error_description, "allowed organisations")
}

test_delete_not_checked if {
	count(org_lists.deny) == 0 with input as object.union(fixtures.register_input, {"operation": "delete"})
		with data.dcr.config.denied_org_ids as ["0015800001HQQrZAAX"]
}
