package redis_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/redistest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	redisstore "github.com/dcrgate/dcrgate/storage/redis"
)

// audience is what both nodes accept in aud, so a request signed for the service is good
// on either node.
const audience = "https://dcr.test"

// dcrBlock is the dcr block of every node: the SSA's software_jwks_endpoint is served by the
// first node (jwksPort), and storage is the body of `storage redis { ... }`.
func dcrBlock(jwksPort int, storage string) string {
	return fmt.Sprintf(`
		mtls
		software_statement {
			directory "OpenBanking Ltd" {
				jwks_file {{SANDBOX}}/directory/jwks.json
				jwks_hosts localhost:%d
			}
			fetch {
				trusted_roots {{SANDBOX}}/ca/bundle.pem
			}
		}
		signed_request {
			audience %s
			fetch {
				trusted_roots {{SANDBOX}}/ca/bundle.pem
			}
		}
		storage redis {
			%s
		}
		# These tests exercise the store; the default policy's per-software limit would cap
		# the registrations they make.
		default_policy off
`, jwksPort, audience, storage)
}

// startNodes starts n gateways on one sandbox and one Redis configuration.
func startNodes(t testing.TB, n int, storage string) []*gatewaytest.Gateway {
	t.Helper()
	first := gatewaytest.FreePort(t)
	a := gatewaytest.Start(t, gatewaytest.Options{TPPs: 2, Port: first, DCRBlock: dcrBlock(first, storage)})
	nodes := []*gatewaytest.Gateway{a}
	for len(nodes) < n {
		nodes = append(nodes, gatewaytest.Start(t, gatewaytest.Options{Sandbox: a.Sandbox,
			Port: gatewaytest.FreePort(t), DCRBlock: dcrBlock(first, storage)}))
	}
	return nodes
}

// tpp is TPP 1 of the sandbox talking to node g.
func tpp(t testing.TB, g *gatewaytest.Gateway) *tppclient.Client {
	t.Helper()
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(1), g.Endpoint, audience)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func signed(t testing.TB, c *tppclient.Client, change map[string]any) []byte {
	t.Helper()
	claims := c.Claims()
	for k, v := range change {
		claims[k] = v
	}
	body, err := c.Sign(claims, tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// expect checks the answer to a call: expect(t, "what", 201)(c.Register(...)).
func expect(t *testing.T, what string, status int) func(*tppclient.Response, error) *tppclient.Response {
	return func(r *tppclient.Response, err error) *tppclient.Response {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Status != status {
			t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
		}
		return r
	}
}

// Register on A; read, update and delete on B; A sees every change; a request replayed
// from A to B is refused: the nodes share the registry and the replay cache.
func TestTwoNodesShareOneRegistry(t *testing.T) {
	const password = "shared-secret-31f0c9e2"
	srv := startServer(t, "--requirepass", password)
	t.Setenv("DCRGATE_TEST_REDIS_PASSWORD", password)
	nodes := startNodes(t, 2, fmt.Sprintf("address %s\n\t\t\tpassword {env.DCRGATE_TEST_REDIS_PASSWORD}", srv.Addr()))
	a, b := tpp(t, nodes[0]), tpp(t, nodes[1])
	ctx := gatewaytest.Context(t)

	body := signed(t, a, nil)
	reg := expect(t, "register on A", 201)(a.Register(ctx, body, "", ""))
	state, err := tppclient.StateFromResponse(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := expect(t, "replay on B", 400)(b.Register(ctx, body, "", ""))
	if r.JSON["error"] != "invalid_client_metadata" {
		t.Errorf("replay on B: %s", r.Body)
	}

	r = expect(t, "get on B", 200)(b.Get(ctx, state.ClientID, state.RegistrationAccessToken))
	if r.JSON["client_id"] != state.ClientID {
		t.Errorf("get on B returned %s", r.Body)
	}
	expect(t, "update on B", 200)(b.Update(ctx, state.ClientID, state.RegistrationAccessToken,
		signed(t, b, map[string]any{"client_name": "renamed on B"})))
	r = expect(t, "get on A after the update", 200)(a.Get(ctx, state.ClientID, state.RegistrationAccessToken))
	if r.JSON["client_name"] != "renamed on B" {
		t.Errorf("A does not see B's update: client_name %v", r.JSON["client_name"])
	}
	expect(t, "delete on B", 204)(b.Delete(ctx, state.ClientID, state.RegistrationAccessToken))
	expect(t, "get on A after the delete", 401)(a.Get(ctx, state.ClientID, state.RegistrationAccessToken))

	// Stopped first: Stop waits until the process exited and its output was copied, so the
	// logs read below are complete (a line still in the pipe could hide a leaked password).
	for i, g := range nodes {
		g.Stop()
		logs := g.Logs()
		if strings.Contains(logs, password) {
			t.Errorf("node %d logged the Redis password", i)
		}
		if !strings.Contains(logs, `"password_set": true`) && !strings.Contains(logs, `"password_set":true`) {
			t.Errorf("node %d did not log its Redis store", i)
		}
	}
}

// 200 POSTs of one signed request spread over two nodes: exactly one registers. 200 PUTs to
// one client over two nodes: each 200 is one version, none is lost, versions never go back.
func TestConcurrentRequestsOverTwoNodes(t *testing.T) {
	srv := startServer(t)
	nodes := startNodes(t, 2, "address "+srv.Addr()+"\n\t\t\tprefix concurrent")
	clients := []*tppclient.Client{tpp(t, nodes[0]), tpp(t, nodes[1])}
	ctx := gatewaytest.Context(t)
	store := redisstore.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr()}), "concurrent", 0)
	const n = 200

	body := signed(t, clients[0], nil)
	statuses := make([]int, n)
	errs := make([]error, n)
	inParallel(n, func(i int) {
		r, err := clients[i%2].Register(ctx, body, "", "")
		if err == nil {
			statuses[i] = r.Status
			if r.Status == 400 && r.JSON["error"] != "invalid_client_metadata" {
				err = fmt.Errorf("400 with %s", r.Body)
			}
		}
		errs[i] = err
	})
	count := map[int]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("POST #%d: %v", i, errs[i])
		}
		count[statuses[i]]++
	}
	if count[201] != 1 || count[400] != n-1 {
		t.Fatalf("statuses of %d POSTs of one jti: %v, want one 201 and %d 400", n, count, n-1)
	}
	softwareID := clients[0].SoftwareID
	ids, err := store.ListBySoftware(ctx, softwareID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("registrations of the software after the POSTs: %v %v, want 1", ids, err)
	}

	reg := expect(t, "register the client to update", 201)(clients[0].Register(ctx, signed(t, clients[0], nil), "", ""))
	state, _ := tppclient.StateFromResponse(reg)
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = signed(t, clients[i%2], map[string]any{"client_name": fmt.Sprintf("writer-%d", i)})
	}
	stopWatch := make(chan struct{})
	var watchErr error
	var watch sync.WaitGroup
	watch.Go(func() {
		var last int64
		for {
			select {
			case <-stopWatch:
				return
			default:
			}
			rec, err := store.Get(ctx, state.ClientID)
			if err != nil {
				watchErr = err
				return
			}
			if rec.Version < last {
				watchErr = fmt.Errorf("version went back from %d to %d", last, rec.Version)
				return
			}
			last = rec.Version
		}
	})
	responses := make([]*tppclient.Response, n)
	inParallel(n, func(i int) {
		r, err := clients[i%2].Update(ctx, state.ClientID, state.RegistrationAccessToken, bodies[i])
		if err == nil {
			statuses[i], responses[i] = r.Status, r
		}
		errs[i] = err
	})
	close(stopWatch)
	watch.Wait()
	if watchErr != nil {
		t.Fatal(watchErr)
	}
	count = map[int]int{}
	succeeded := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("PUT #%d: %v", i, errs[i])
		}
		count[statuses[i]]++
		switch statuses[i] {
		case 200:
			succeeded[fmt.Sprintf("writer-%d", i)] = true
		case 503:
			// 200 updates at once on a loaded machine may outwait the admission queue: the
			// designed answer to overload, explicit and before any work, so nothing written.
			if !overloaded(responses[i]) {
				t.Fatalf("PUT #%d: 503 that is not the admission control's: %v %s", i, responses[i].Header, responses[i].Body)
			}
		}
	}
	if count[200]+count[409]+count[503] != n || count[200] == 0 {
		t.Fatalf("statuses of %d PUTs: %v, want only 200, 409 and the admission control's 503, some 200", n, count)
	}
	final, err := store.Get(ctx, state.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Version != int64(1+count[200]) {
		t.Errorf("version %d after %d successful PUTs, want %d: updates were lost", final.Version, count[200], 1+count[200])
	}
	if name, _ := final.Metadata["client_name"].(string); !succeeded[name] {
		t.Errorf("final client_name %q is not one of the acknowledged writes", name)
	}
	t.Logf("200 PUTs: %v; final version %d", count, final.Version)
}

// Caddy starts while Redis is down and answers 503 (RFC 7591 JSON, Retry-After), comes back
// by itself when Redis starts; Redis killed mid-run gives 503s, never a 500, and a
// restarted Redis serves again, registrations and all. A request that got a 503 consumed
// nothing: resent unchanged, it registers.
func TestRedisFaultsThroughTheGateway(t *testing.T) {
	port := gatewaytest.FreePort(t)
	srv := redistest.New(t, port, "--appendonly", "yes", "--appendfsync", "always")
	nodes := startNodes(t, 1, fmt.Sprintf("address 127.0.0.1:%d\n\t\t\tdial_timeout 1s\n\t\t\tread_timeout 1s", port))
	c := tpp(t, nodes[0])
	ctx := gatewaytest.Context(t)

	unavailable := func(what string) func(*tppclient.Response, error) {
		return func(r *tppclient.Response, err error) {
			t.Helper()
			expect(t, what, 503)(r, err)
			if r.JSON["error"] != dcr.CodeTemporarilyUnavailable || r.JSON["error_description"] == "" || r.Header.Get("Retry-After") == "" {
				t.Errorf("%s: not an RFC 7591 error with Retry-After: %v %s", what, r.Header, r.Body)
			}
		}
	}
	refused := signed(t, c, nil)
	unavailable("register before Redis started")(c.Register(ctx, refused, "", ""))

	srv.Start()
	reg := expect(t, "the refused request, resent once Redis is up", 201)(retryUntilNot503(t, func() (*tppclient.Response, error) {
		return c.Register(ctx, refused, "", "")
	}), nil)
	state, _ := tppclient.StateFromResponse(reg)

	srv.Kill()
	unavailable("register with Redis killed")(c.Register(ctx, signed(t, c, nil), "", ""))
	unavailable("get with Redis killed")(c.Get(ctx, state.ClientID, state.RegistrationAccessToken))
	unavailable("update with Redis killed")(c.Update(ctx, state.ClientID, state.RegistrationAccessToken, signed(t, c, nil)))
	unavailable("delete with Redis killed")(c.Delete(ctx, state.ClientID, state.RegistrationAccessToken))

	srv.Start()
	expect(t, "get once Redis is back", 200)(retryUntilNot503(t, func() (*tppclient.Response, error) {
		return c.Get(ctx, state.ClientID, state.RegistrationAccessToken)
	}), nil)
	expect(t, "register once Redis is back", 201)(c.Register(ctx, signed(t, c, nil), "", ""))
	nodes[0].Stop() // the logs are complete once the process exited and its output was copied
	if logs := nodes[0].Logs(); strings.Contains(logs, "panic") || strings.Contains(logs, `"status": 500`) {
		t.Errorf("the gateway panicked or answered 500:\n%s", logs)
	}
}

// retryUntilNot503 repeats call while it answers 503: the first calls after Redis returns
// may still meet a connection of the old process.
func retryUntilNot503(t *testing.T, call func() (*tppclient.Response, error)) *tppclient.Response {
	t.Helper()
	var last *tppclient.Response
	waitFor(t, "an answer other than 503", func() (bool, string) {
		r, err := call()
		if err != nil {
			return false, err.Error()
		}
		last = r
		return r.Status != http.StatusServiceUnavailable, string(r.Body)
	})
	return last
}

// inParallel runs fn(0..n-1) in n goroutines released together.
// overloaded reports whether r is the admission control's refusal: 503
// temporarily_unavailable with a Retry-After.
func overloaded(r *tppclient.Response) bool {
	return r != nil && r.Status == 503 && r.Header.Get("Retry-After") != "" && r.JSON["error"] == "temporarily_unavailable"
}

func inParallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}
