package dcr.rules.roles_scopes_test

import rego.v1

import data.dcr.fixtures
import data.dcr.rules.roles_scopes

test_scopes_of_the_roles_allowed if {
	count(roles_scopes.deny) == 0 with input as fixtures.register_input
}

test_openid_always_allowed if {
	count(roles_scopes.deny) == 0 with input as fixtures.with_metadata({"scope": "openid"})
}

test_scope_of_another_role_denied if {
	some d in roles_scopes.deny with input as fixtures.with_metadata({"scope": "openid fundsconfirmations"})
	d.error == "invalid_client_metadata"
	contains(d.error_description, "fundsconfirmations")
}

test_cbpii_gets_fundsconfirmations if {
	req := object.union(fixtures.with_ssa({"software_roles": ["CBPII"]}), {"metadata": {"scope": "openid fundsconfirmations"}})
	count(roles_scopes.deny) == 0 with input as req
}

test_aisp_only_denied_payments if {
	count(roles_scopes.deny) == 1 with input as fixtures.with_ssa({"software_roles": ["AISP"]})
}

test_single_role_as_string if {
	count(roles_scopes.deny) == 0 with input as object.union(fixtures.with_ssa({"software_roles": "AISP"}), {"metadata": {"scope": "openid accounts"}})
}

test_mapping_is_data if {
	count(roles_scopes.deny) == 1 with input as fixtures.register_input
		with data.dcr.config.role_scopes as {"AISP": [], "PISP": ["payments"]}
}

test_read_not_checked if {
	count(roles_scopes.deny) == 0 with input as object.union(fixtures.with_metadata({"scope": "openid fundsconfirmations"}), {"operation": "read"})
}
