# METADATA
# title: dcrgate registration decision
# description: |
#   Collects the denials of every rule package under data.dcr.rules and the metadata overrides
#   they propose into the one decision the gateway reads (data.dcr.decision). A rule package
#   contributes `deny contains {"rule", "error", "error_description"}` and, optionally,
#   `metadata := {field: value}` (only allow-listed fields are accepted by the gateway).
package dcr

import rego.v1

# Every denial of every rule, in a stable order (sorted by value).
denials := sort([d | some name; some d in data.dcr.rules[name].deny])

# The overrides all rules propose, merged (a later package name wins on a shared field).
overrides := object.union_n([m | some name; m := data.dcr.rules[name].metadata])

# An else chain, so that a decision that allows evaluates one body and never builds the refusal.
decision := {"allow": true, "metadata": overrides, "reasons": []} if {
	denials == []
} else := {
	"allow": false,
	"error": denials[0].error,
	"error_description": denials[0].error_description,
	"reasons": [sprintf("%s: %s", [d.rule, d.error_description]) | some d in denials],
}
