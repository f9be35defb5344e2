package dcr.examples.org_scope_ceilings_test

import rego.v1

import data.dcr.examples.org_scope_ceilings as rule
import data.dcr.fixtures

ceilings := {"0015800001HQQrZAAX": ["openid", "accounts"]}

test_no_ceiling_no_override if {
	not rule.metadata with input as fixtures.register_input
	count(rule.deny) == 0 with input as fixtures.register_input
}

test_scope_narrowed_to_the_ceiling if {
	rule.metadata == {"scope": "openid accounts"} with input as fixtures.register_input
		with data.dcr.config.org_scope_ceilings as ceilings
	count(rule.deny) == 0 with input as fixtures.register_input with data.dcr.config.org_scope_ceilings as ceilings
}

test_within_the_ceiling_untouched if {
	not rule.metadata with input as fixtures.with_metadata({"scope": "openid accounts"})
		with data.dcr.config.org_scope_ceilings as ceilings
}

test_nothing_left_denied if {
	some d in rule.deny with input as fixtures.with_metadata({"scope": "openid payments"})
		with data.dcr.config.org_scope_ceilings as ceilings
	d.error == "invalid_client_metadata"
}
