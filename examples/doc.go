// Package examples holds no code: its tests check the example deployments as a user runs
// them (the Caddyfiles' environment placeholders, `make run-upstream`).
package examples
