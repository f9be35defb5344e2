package caddymodule_test

import (
	"strings"
	"testing"
)

// profileProbePolicy refuses every registration with what it reads of the OB profile's
// mapping, so the answer shows the data the policy sees.
const profileProbePolicy = `package dcr.rules.profile_probe

import rego.v1

deny contains {
	"rule": "profile_probe",
	"error": "unapproved_software_statement",
	"error_description": sprintf("CBPII may hold %v; AISP may hold %v", [data.dcrgate.profile.role_scopes.CBPII, data.dcrgate.profile.role_scopes.AISP]),
} if input.operation == "register"
`

// TestPolicySeesTheProfileRoleScopes: the profile's role_scopes (Go owns roles → scopes) is
// the policy's data.dcrgate.profile.role_scopes in the real gateway: the defaults first, and
// after the Caddyfile's mapping changes and the gateway restarts, the changed mapping.
func TestPolicySeesTheProfileRoleScopes(t *testing.T) {
	g := startWithPolicy(t, 1, `policy {
			modules {{POLICY}}/probe.rego
		}`, map[string]string{"probe.rego": profileProbePolicy})
	wantRejected(t, policyRegister(t, g, 1, nil), 400, "unapproved_software_statement",
		`CBPII may hold ["fundsconfirmations"]; AISP may hold ["accounts"]`)

	const dcrOpen = "dcr /register {\n"
	if !strings.Contains(g.Caddyfile, dcrOpen) {
		t.Fatalf("no dcr block in\n%s", g.Caddyfile)
	}
	g.WriteCaddyfile(strings.Replace(g.Caddyfile, dcrOpen, dcrOpen+"\t\tprofile {\n\t\t\trole_scopes CBPII payments accounts\n\t\t}\n", 1))
	g.Restart()
	wantRejected(t, policyRegister(t, g, 1, nil), 400, "unapproved_software_statement",
		`CBPII may hold ["payments", "accounts"]; AISP may hold ["accounts"]`)
}
