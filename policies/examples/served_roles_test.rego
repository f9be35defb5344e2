package dcr.examples.served_roles_test

import rego.v1

import data.dcr.examples.served_roles as rule
import data.dcr.fixtures

# The gateway's default mapping (dcr/obprofile DefaultRoleScopes).
defaults := {"AISP": ["accounts"], "PISP": ["payments"], "CBPII": ["fundsconfirmations"]}

test_served_role_allowed if {
	count(rule.deny) == 0 with input as fixtures.register_input
		with data.dcrgate.profile.role_scopes as defaults
}

test_roles_match_case_insensitively if {
	count(rule.deny) == 0 with input as fixtures.with_ssa({"software_roles": ["aisp"]})
		with data.dcrgate.profile.role_scopes as defaults
}

test_role_mapped_to_nothing_refused if {
	some d in rule.deny with input as fixtures.with_ssa({"software_roles": ["PISP"]})
		with data.dcrgate.profile.role_scopes as object.union(defaults, {"PISP": []})
	d.error == "unapproved_software_statement"
	d.error_description == "none of the software roles PISP may hold a scope here (served: AISP CBPII)"
}

test_unknown_role_refused if {
	some d in rule.deny with input as fixtures.with_ssa({"software_roles": ["ASPSP"]})
		with data.dcrgate.profile.role_scopes as defaults
	d.rule == "served_roles"
}

test_read_not_judged if {
	count(rule.deny) == 0 with input as object.union(fixtures.with_ssa({"software_roles": ["ASPSP"]}), {"operation": "read"})
		with data.dcrgate.profile.role_scopes as defaults
}
