# dcrgate: Caddy with the OB DCR modules.
GO        ?= go
BIN       := bin/caddy
SANDBOX   ?= sandbox
GOTESTFLAGS ?= -count=1 -timeout 15m

.PHONY: build run sandbox test unit integration bench fuzz xcaddy vet clean

build:
	$(GO) build -o $(BIN) ./cmd/caddy

# Builds, creates ./sandbox when it is missing, and serves https://localhost:8443/register.
run: build
	@[ -f $(SANDBOX)/sandbox.json ] || ./$(BIN) dcr sandbox init --dir $(SANDBOX)
	./$(BIN) run --config Caddyfile --adapter caddyfile

sandbox: build
	./$(BIN) dcr sandbox init --dir $(SANDBOX) --force

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

# The benchmark suite, in full (about 40 minutes): in-process pipeline vs bare crypto, policy
# evaluation, Redis vs embedded end to end, then registrations at fixed offered loads,
# pass-through vs plain reverse_proxy, and memory (bench/results.json). docs/benchmarks.md
# holds the figures of the last run.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./caddymodule/ ./plugins/policy/
	$(GO) test -run '^$$' -bench Registration -benchtime 2000x ./storage/redis/
	$(GO) test -count=1 -timeout 90m -v -run . ./bench -args -full -report $(CURDIR)/bench/results.json

# Builds the same binary with the xcaddy library from xcaddy.json.
xcaddy:
	cd tools/xcaddy && $(GO) run . -manifest ../../xcaddy.json

clean:
	rm -rf bin
