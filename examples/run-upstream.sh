#!/usr/bin/env bash
# `make run-upstream`: the example OpenID provider (examples/backends/oidc-provider) and the
# gateway in front of it (examples/Caddyfile.upstream), started together and stopped together
# (Ctrl-C). See docs/upstream.md, "Step by step".
#
# Environment (the Caddyfile's placeholders; defaults in brackets):
#   DCRGATE_PORT           the gateway's https port [8443]; the sandbox must be made for it
#   DCRGATE_HTTP_PORT      the gateway's http port [8080]
#   DCRGATE_ADMIN          Caddy's admin address [localhost:2019]
#   DCRGATE_BACKEND_PORT   the provider's port, on 127.0.0.1 [3000]
#   DCRGATE_SANDBOX        the sandbox directory [sandbox]; made when missing
#   DCRGATE_STATE          a directory of its own for Caddy's data and config [.state/run-upstream];
#                          emptied at each start, since the provider keeps its clients in memory
#   AS_INITIAL_ACCESS_TOKEN, DCR_GATEWAY_SECRET
#                          the provider's INITIAL_ACCESS_TOKEN and GATEWAY_CLIENT_SECRET, which the
#                          gateway must know; random for this run when unset
#   BIN                    the gateway binary [bin/caddy] (`make run-upstream` builds it)
set -euo pipefail
cd "$(dirname "$0")/.."

port=${DCRGATE_PORT:-8443}
backend_port=${DCRGATE_BACKEND_PORT:-3000}
sandbox=${DCRGATE_SANDBOX:-sandbox}
state=${DCRGATE_STATE:-.state/run-upstream}
bin=${BIN:-bin/caddy}
base=https://localhost:$port
provider_dir=examples/backends/oidc-provider

say() { printf 'run-upstream: %s\n' "$*" >&2; }

[ -x "$bin" ] || { say "$bin is missing: run 'make build' (make run-upstream does)"; exit 1; }
command -v node >/dev/null || { say "node is not installed (the example provider needs Node.js and npm)"; exit 1; }
command -v curl >/dev/null || { say "curl is not installed"; exit 1; }

# The sandbox, made for this port: its SSAs point their software_jwks_endpoint at $base.
if ! "$bin" dcr sandbox init --dir "$sandbox" --base-url "$base" --if-missing >/dev/null; then
  say "for a sandbox made for another port: give this port one of its own"
  say "(SANDBOX=sandbox-$port make run-upstream PORT=$port), or replace it: make sandbox PORT=$port (a new CA and keys)"
  exit 1
fi
sandbox_abs=$(cd "$sandbox" && pwd)

if [ ! -f "$provider_dir/node_modules/oidc-provider/package.json" ]; then
  say "installing the provider's packages (npm ci in $provider_dir)"
  (cd "$provider_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

random_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
AS_INITIAL_ACCESS_TOKEN=${AS_INITIAL_ACCESS_TOKEN:-$(random_secret)}
DCR_GATEWAY_SECRET=${DCR_GATEWAY_SECRET:-$(random_secret)}
export AS_INITIAL_ACCESS_TOKEN DCR_GATEWAY_SECRET

case "$state" in "" | "/") say "DCRGATE_STATE must be a directory of its own"; exit 1 ;; esac
rm -rf "$state/caddy" "$state/config"
mkdir -p "$state"
state_abs=$(cd "$state" && pwd)

provider_pid= gateway_pid=
stop() {
  trap - INT TERM
  for pid in $gateway_pid $provider_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $gateway_pid $provider_pid; do wait "$pid" 2>/dev/null || true; done
}
trap 'say stopping; stop; exit 130' INT
trap 'say stopping; stop; exit 143' TERM

(cd "$provider_dir" && exec env PORT="$backend_port" ISSUER="$base" \
  INITIAL_ACCESS_TOKEN="$AS_INITIAL_ACCESS_TOKEN" \
  GATEWAY_CLIENT_ID=dcrgate GATEWAY_CLIENT_SECRET="$DCR_GATEWAY_SECRET" \
  LOOPBACK_FETCH_HOSTS="localhost:$port" NODE_EXTRA_CA_CERTS="$sandbox_abs/ca/bundle.pem" \
  node provider.js) &
provider_pid=$!

XDG_DATA_HOME="$state_abs" XDG_CONFIG_HOME="$state_abs/config" DCRGATE_PORT="$port" \
  DCRGATE_BACKEND_PORT="$backend_port" DCRGATE_SANDBOX="$sandbox" \
  "$bin" run --config examples/Caddyfile.upstream --adapter caddyfile &
gateway_pid=$!

# Ready when the provider's discovery document answers through the gateway.
ready=
for _ in $(seq 1 600); do
  if ! kill -0 "$provider_pid" 2>/dev/null || ! kill -0 "$gateway_pid" 2>/dev/null; then break; fi
  if curl -sf -o /dev/null --cacert "$sandbox/ca/bundle.pem" "$base/.well-known/openid-configuration"; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  say "the provider or the gateway did not start (see above)"
  stop
  exit 1
fi

tpp=$sandbox/tpps/1
cat <<EOF

dcrgate (pid $gateway_pid) serves $base in front of the example OpenID provider
(pid $provider_pid, 127.0.0.1:$backend_port, reached only through the gateway).
Discovery: $base/.well-known/openid-configuration

Register sandbox TPP 1 (tls_client_auth; the client_id is saved in $tpp/registration.json):
  $bin dcr register --sandbox $sandbox

Get a client-credentials token for it at the token endpoint, over mTLS with the TPP's certificate:
  CLIENT_ID=\$(sed -n 's/^  "client_id": "\([^"]*\)".*/\1/p' $tpp/registration.json)
  curl --cert $tpp/transport.pem --key $tpp/transport.key --cacert $sandbox/ca/bundle.pem -d grant_type=client_credentials -d "client_id=\$CLIENT_ID" -d scope=accounts $base/token

Manage the registration: $bin dcr get|update|delete --sandbox $sandbox
Ctrl-C stops both.

EOF

# Until Ctrl-C, or until one of them exits by itself (then the other is stopped too).
status=0
wait -n "$provider_pid" "$gateway_pid" || status=$?
say "a process exited (status $status); stopping the other"
stop
exit 1
