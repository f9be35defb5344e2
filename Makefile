# dcrgate: Caddy with the OB DCR modules.
GO        ?= go
BIN       := bin/caddy
# The gateway's https port, for `make run` and `make run-upstream` (PORT=9443 make run); the
# Caddyfiles read it as DCRGATE_PORT, and the sandbox is made for https://localhost:$(PORT).
PORT      ?= $(or $(DCRGATE_PORT),8443)
SANDBOX   ?= $(or $(DCRGATE_SANDBOX),sandbox)
# Caddy's data (registrations, used jtis, locks) and config of `make run` / `make run-upstream`,
# beside the sandbox instead of the account's shared Caddy directories; `make clean` removes it.
STATE     ?= .state
FUZZTIME  ?= 30s
GOTESTFLAGS ?= -count=1 -timeout 15m

.PHONY: build run run-upstream sandbox test unit integration bench bench-policy fuzz xcaddy vet clean

build:
	$(GO) build -o $(BIN) ./cmd/caddy

# Builds, creates $(SANDBOX) when it is missing (refused when it was made for another port), and
# serves https://localhost:$(PORT)/register with its state in $(STATE)/run.
run: build
	./$(BIN) dcr sandbox init --dir $(SANDBOX) --base-url https://localhost:$(PORT) --if-missing || \
	  { echo "make run: use SANDBOX=sandbox-$(PORT) for this port, or 'make sandbox PORT=$(PORT)' to replace $(SANDBOX) (a new CA and keys)"; exit 1; }
	XDG_DATA_HOME=$(abspath $(STATE))/run XDG_CONFIG_HOME=$(abspath $(STATE))/run/config \
	  DCRGATE_PORT=$(PORT) DCRGATE_SANDBOX=$(SANDBOX) ./$(BIN) run --config Caddyfile --adapter caddyfile

# The gateway in front of the example OpenID provider (examples/Caddyfile.upstream), both
# started by examples/run-upstream.sh and stopped together by Ctrl-C. Stop `make run` first
# (same ports).
run-upstream: build
	BIN=$(BIN) DCRGATE_PORT=$(PORT) DCRGATE_SANDBOX=$(SANDBOX) DCRGATE_STATE=$(STATE)/run-upstream \
	  ./examples/run-upstream.sh

# Replaces $(SANDBOX) entirely (CA, server certificate, directory key, TPPs) and the state of
# `make run`, whose registrations were the old TPPs'. `bin/caddy dcr sandbox add-tpp` adds TPPs
# and keeps the trust setup.
sandbox: build
	./$(BIN) dcr sandbox init --dir $(SANDBOX) --base-url https://localhost:$(PORT) --force
	rm -rf $(STATE)/run

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The whole suite: unit tests, Caddyfile adapt golden files, integration tests that start the
# real binary with real mTLS, and the benchmarks in a short mode so they cannot rot.
test: vet
	$(GO) test $(GOTESTFLAGS) ./...
	@if ls policies/*.rego >/dev/null 2>&1; then echo "$(GO) tool opa test policies/"; $(GO) tool opa test policies/; fi
	$(GO) test -run '^$$' -bench . -benchtime 20x ./caddymodule/... ./plugins/policy/
	$(GO) test -run '^$$' -bench Registration -benchtime 20x ./storage/redis/
	$(GO) test -run '^$$' -bench StoreCreateClaim -benchtime 20x ./storage/bolt/

# Unit tests only: no external process (the helpers of internal/gatewaytest and
# internal/redistest skip their tests under -short).
unit:
	$(GO) test $(GOTESTFLAGS) -short ./...

# The tests unit leaves out: those that start the real gateway, Redis or the example provider
# (internal/testsplit finds them in the sources).
integration:
	@set -e; sel=$$($(GO) run ./internal/testsplit); set -- $$sel; run=$$1; shift; \
	echo "$(GO) test $(GOTESTFLAGS) -run '$$run' $$*"; \
	$(GO) test $(GOTESTFLAGS) -run "$$run" "$$@"

# Each fuzz target (func Fuzz* in a _test.go file) for FUZZTIME (default 30s), one after another.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname "$${f#./}"); \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
	    echo "$(GO) test -run '^\$$' -fuzz '^$$target\$$' -fuzztime $(FUZZTIME) $$pkg"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	  done; \
	done

# The benchmark suite, in full (about 40 minutes): in-process pipeline vs bare crypto, policy
# evaluation, Redis vs embedded end to end, then registrations at fixed offered loads,
# pass-through vs plain reverse_proxy, and memory (bench/results.json). docs/benchmarks.md
# holds the figures of the last run.
bench: build
	$(GO) test -run '^$$' -bench . -skip PipelineParallel -benchmem -benchtime 2s ./caddymodule/ ./plugins/policy/
	$(GO) test -run '^$$' -bench PipelineParallel -benchmem -benchtime 2s -count 3 ./caddymodule/
	$(GO) test -run '^$$' -bench Registration -benchtime 2000x ./storage/redis/
	$(GO) test -run '^$$' -bench 'StoreCreateClaim|CommitPages' -benchtime 2s ./storage/bolt/
	$(GO) test -count=1 -timeout 90m -v -run . ./bench -args -full -report $(CURDIR)/bench/results.json

# Instructions per decision of the default policy (Eval: the query; Protect: the decide phase
# with its input), counted by callgrind: repeatable where wall-clock time on a shared machine
# is not. Without cgo, the garbage collector off and one thread, so that valgrind can follow
# the Go runtime and only the evaluation's own work is counted (docs/benchmarks.md). Each
# count is the whole program's at 3000 decisions less that at 1000, over 2000: the setup
# cancels out, and no function boundary is needed (callgrind's --toggle-collect loses track
# of a Go function whose stack grows, and once counted 28 instructions).
bench-policy:
	CGO_ENABLED=0 $(GO) test -c -o bin/policy.test ./plugins/policy
	@count() { cd plugins/policy && GOGC=off GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind \
	    --callgrind-out-file=/dev/null ../../bin/policy.test -test.run '^$$' -test.bench "DefaultPolicy/$$1$$" \
	    -test.benchtime "$$2x" 2>&1 | sed -n 's/.*Collected : //p'; }; \
	for b in Eval EvalTopdown Protect; do \
	  a=$$(count $$b 1000); z=$$(count $$b 3000); \
	  echo "DefaultPolicy/$$b: $$(( (z - a) / 2000 )) instructions per decision"; done

# Builds the same binary with the xcaddy library from xcaddy.json.
xcaddy:
	cd tools/xcaddy && $(GO) run . -manifest ../../xcaddy.json

clean:
	rm -rf bin $(STATE)
