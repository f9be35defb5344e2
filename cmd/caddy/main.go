// Command caddy is Caddy with the standard modules and every dcrgate module.
// `go build ./cmd/caddy` (or `make build`) is the primary way to build the gateway.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dcrgate/dcrgate"
)

func main() {
	caddycmd.Main()
}
