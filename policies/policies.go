// Package policies holds dcrgate's Rego: the default registration policy set (package dcr and
// the rule packages under dcr.rules), its data document, the examples policy authors copy, and
// every module's _test.rego. They are embedded so the gateway runs the defaults without any file
// on disk; `go tool opa test policies/` runs the tests.
package policies

import "embed"

// FS holds the default set (*.rego, data.json) and the examples (examples/*.rego), tests
// included; loaders skip *_test.rego when compiling a policy for the gateway.
//
//go:embed *.rego data.json examples/*.rego
var FS embed.FS

// DataFile is the default data document, at the root of data.
const DataFile = "data.json"

// ExamplesDir holds the example policies (package dcr.examples.*), which the default set does
// not load.
const ExamplesDir = "examples"
