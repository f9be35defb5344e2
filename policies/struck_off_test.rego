package dcr.rules.struck_off_test

import rego.v1

import data.dcr.fixtures
import data.dcr.rules.struck_off

denied(org, software) := object.union(fixtures.register_input, {"denied": {"org": org, "software": software, "reason": "FCA notice"}})

test_not_denied_allowed if {
	count(struck_off.deny) == 0 with input as denied(false, false)
}

test_no_denied_field_allowed if {
	count(struck_off.deny) == 0 with input as fixtures.register_input
}

test_org_denied if {
	some d in struck_off.deny with input as denied(true, false)
	d.error == "invalid_software_statement"
	contains(d.error_description, `org_id "0015800001HQQrZAAX" is struck off`)
	not contains(d.error_description, "FCA notice")
}

test_software_denied if {
	some d in struck_off.deny with input as denied(false, true)
	contains(d.error_description, `software_id "7gHx2sK9mQ4rT1uV3wY5zA" is struck off`)
}

test_both_denied_two_reasons if {
	count(struck_off.deny) == 2 with input as denied(true, true)
}

test_update_checked_from_existing_registration if {
	upd := object.union(json.remove(denied(true, false), ["software_statement"]), {
		"operation": "update",
		"existing_registration": {"org_id": "org-from-record", "software_id": "sw"},
	})
	some d in struck_off.deny with input as upd
	contains(d.error_description, `org_id "org-from-record"`)
}

test_read_and_delete_not_checked if {
	count(struck_off.deny) == 0 with input as object.union(denied(true, true), {"operation": "delete"})
	count(struck_off.deny) == 0 with input as object.union(denied(true, true), {"operation": "read"})
}

test_decision_refuses if {
	d := data.dcr.decision with input as denied(true, false)
	d.allow == false
	d.error == "invalid_software_statement"
}
