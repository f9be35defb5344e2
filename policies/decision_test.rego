package dcr.decision_test

import rego.v1

import data.dcr
import data.dcr.fixtures

test_default_allows_a_good_registration if {
	d := dcr.decision with input as fixtures.register_input
	d.allow == true
	d.metadata == {}
	d.reasons == []
}

test_denial_carries_error_and_reasons if {
	d := dcr.decision with input as fixtures.with_ssa({"org_status": "Revoked", "software_mode": "Sandbox"})
	d.allow == false
	d.error == "unapproved_software_statement"
	count(d.reasons) == 2
}

test_read_allowed_whatever_the_ssa if {
	d := dcr.decision with input as object.union(fixtures.with_ssa({"org_status": "Revoked"}), {"operation": "read"})
	d.allow == true
}

test_rule_overrides_are_merged if {
	d := dcr.decision with input as fixtures.register_input
		with data.dcr.rules.narrow.metadata as {"scope": "openid accounts"}
	d.allow == true
	d.metadata == {"scope": "openid accounts"}
}
