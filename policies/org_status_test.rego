package dcr.rules.org_status_test

import rego.v1

import data.dcr.fixtures
import data.dcr.rules.org_status

test_active_allowed if {
	count(org_status.deny) == 0 with input as fixtures.register_input
}

test_revoked_denied if {
	some d in org_status.deny with input as fixtures.with_ssa({"org_status": "Revoked"})
	d.error == "unapproved_software_statement"
	contains(d.error_description, "Revoked")
}

test_missing_denied if {
	req := json.remove(fixtures.register_input, ["software_statement/claims/org_status"])
	count(org_status.deny) == 1 with input as req
}

test_update_checked if {
	count(org_status.deny) == 1 with input as object.union(fixtures.with_ssa({"org_status": "Withdrawn"}), {"operation": "update"})
}

test_delete_not_checked if {
	count(org_status.deny) == 0 with input as object.union(fixtures.with_ssa({"org_status": "Withdrawn"}), {"operation": "delete"})
}

test_statuses_are_data if {
	count(org_status.deny) == 0 with input as fixtures.with_ssa({"org_status": "Suspended"})
		with data.dcr.config.org_statuses as ["Active", "Suspended"]
}
