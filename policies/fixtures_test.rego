# Inputs shaped like the gateway's (see docs/policies.md), shared by the tests.
package dcr.fixtures

import rego.v1

ssa_claims := {
	"iss": "OpenBanking Ltd",
	"software_id": "7gHx2sK9mQ4rT1uV3wY5zA",
	"org_id": "0015800001HQQrZAAX",
	"org_name": "TPP One",
	"org_status": "Active",
	"software_mode": "Test",
	"software_environment": "sandbox",
	"software_roles": ["AISP", "PISP"],
	"software_redirect_uris": ["https://tpp1.example.com/cb"],
}

metadata := {
	"scope": "openid accounts payments",
	"grant_types": ["authorization_code", "client_credentials", "refresh_token"],
	"response_types": ["code id_token"],
	"redirect_uris": ["https://tpp1.example.com/cb"],
	"token_endpoint_auth_method": "tls_client_auth",
}

register_input := {
	"operation": "register",
	"software_statement": {"claims": ssa_claims, "directory": "OpenBanking Ltd"},
	"metadata": metadata,
	"registrations_for_software": 0,
}

# with_ssa returns register_input with SSA claims changed.
with_ssa(change) := object.union(register_input, {"software_statement": {"claims": object.union(ssa_claims, change), "directory": "OpenBanking Ltd"}})

with_metadata(change) := object.union(register_input, {"metadata": object.union(metadata, change)})
