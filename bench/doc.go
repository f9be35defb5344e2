// Package bench holds the end-to-end benchmark suite of dcrgate: registrations over real mTLS
// at fixed offered loads (embedded store and Redis), non-DCR pass-through against plain
// reverse_proxy, and memory after many registrations and over a constant load. Each run
// starts the real gateway binary (internal/gatewaytest) and drives it with internal/loadgen.
//
// `make test` runs it in a short mode so it cannot rot; `make bench` runs it in full and
// writes bench/results.json, from which docs/benchmarks.md is written:
//
//	go test ./bench -run . -count=1 -timeout 60m -v -args -full -report results.json
//
// Every figure is compared with another measured in the same run; nothing asserts a speed.
package bench
