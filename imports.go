// Package dcrgate pulls in every dcrgate Caddy module, so that
// `xcaddy build --with github.com/dcrgate/dcrgate` builds a Caddy with all of them.
package dcrgate

import (
	_ "github.com/dcrgate/dcrgate/caddymodule"
	_ "github.com/dcrgate/dcrgate/caddymodule/dcrcmd"
	_ "github.com/dcrgate/dcrgate/plugins/accesstoken"
	_ "github.com/dcrgate/dcrgate/plugins/mtls"
	_ "github.com/dcrgate/dcrgate/plugins/policy"
	_ "github.com/dcrgate/dcrgate/plugins/signedrequest"
	_ "github.com/dcrgate/dcrgate/plugins/softwarestatement"
	_ "github.com/dcrgate/dcrgate/registrars/local"
	_ "github.com/dcrgate/dcrgate/registrars/upstream"
	_ "github.com/dcrgate/dcrgate/storage/bolt"
	_ "github.com/dcrgate/dcrgate/storage/caddystorage"
	_ "github.com/dcrgate/dcrgate/storage/redis"
	_ "github.com/dcrgate/dcrgate/tlsrevocation"
)
