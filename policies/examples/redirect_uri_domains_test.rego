package dcr.examples.redirect_uri_domains_test

import rego.v1

import data.dcr.examples.redirect_uri_domains as rule
import data.dcr.fixtures

domains := {"0015800001HQQrZAAX": ["tpp1.example.com"]}

test_registered_domain_allowed if {
	count(rule.deny) == 0 with input as fixtures.register_input with data.dcr.config.org_domains as domains
}

test_subdomain_allowed if {
	count(rule.deny) == 0 with input as fixtures.with_metadata({"redirect_uris": ["https://app.tpp1.example.com:8443/cb"]})
		with data.dcr.config.org_domains as domains
}

test_lookalike_domain_denied if {
	some d in rule.deny with input as fixtures.with_metadata({"redirect_uris": ["https://eviltpp1.example.com/cb"]})
		with data.dcr.config.org_domains as domains
	d.error == "invalid_redirect_uri"
}

test_userinfo_trick_denied if {
	count(rule.deny) == 1 with input as fixtures.with_metadata({"redirect_uris": ["https://tpp1.example.com@evil.example/cb"]})
		with data.dcr.config.org_domains as domains
}

test_unknown_organisation_denied if {
	count(rule.deny) == 1 with input as fixtures.register_input with data.dcr.config.org_domains as {}
}
