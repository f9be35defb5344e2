package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// burstDCRBlock is the example protections with the default policy set, its registrations
// limit raised out of the way ({{POLICY}}/data.json) and the admission control's settings.
func burstDCRBlock(t *testing.T, admission string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"dcr":{"config":{"max_registrations_per_software":100000}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return gatewaytest.DefaultDCRBlock + fmt.Sprintf(`
		policy {
			data %s/data.json
		}
		%s
`, dir, admission)
}

// fire sends every body at once (each from its client, after one start signal) and returns
// the answers in the order of bodies.
func fire(t *testing.T, clients []*tppclient.Client, bodies [][]byte) []*tppclient.Response {
	t.Helper()
	out := make([]*tppclient.Response, len(bodies))
	errs := make([]error, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	ctx := gatewaytest.Context(t)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = clients[i].Register(ctx, bodies[i], tppclient.ContentTypeJOSE, "")
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// TestBurstOfCopies: 200 concurrent copies of one valid signed request, ten times with a new
// request each time: exactly one is registered, the 199 others are refused as replays (400
// invalid_client_metadata), none gets a 5xx. The queue timeout is generous, so the admission
// control refuses nothing here; the copies that queue behind the first are refused by the
// screen without their cryptography.
func TestBurstOfCopies(t *testing.T) {
	const copies, bursts = 200, 10
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1, DefaultStore: true, DCRBlock: burstDCRBlock(t, "queue_timeout 30s")})
	c := newClient(t, g, 1)
	clients := slices.Repeat([]*tppclient.Client{c}, copies)
	for burst := range bursts {
		body := sign(t, c, c.Claims(), tppclient.SignOptions{})
		statuses := map[int]int{}
		for i, res := range fire(t, clients, slices.Repeat([][]byte{body}, copies)) {
			statuses[res.Status]++
			switch res.Status {
			case http.StatusCreated:
			case http.StatusBadRequest:
				if res.JSON["error"] != "invalid_client_metadata" || !strings.Contains(fmt.Sprint(res.JSON["error_description"]), "already been used") {
					t.Fatalf("burst %d, copy %d: 400 that is not the replay refusal: %s", burst, i, res.Body)
				}
			default:
				t.Fatalf("burst %d, copy %d: %d %s", burst, i, res.Status, res.Body)
			}
		}
		if statuses[http.StatusCreated] != 1 || statuses[http.StatusBadRequest] != copies-1 {
			t.Fatalf("burst %d: %v, want one 201 and %d × 400", burst, statuses, copies-1)
		}
	}
}

// TestBurstOnSaturatedCPU: 200 different valid requests from 20 TPPs at once while the CPU is
// saturated (busy goroutines in this process, on every core): every answer is a 201 or an
// explicit 503 temporarily_unavailable with Retry-After (the admission control: at most two
// calls in the phases, a 250ms queue), nothing else; afterwards every 201's client is stored
// and readable, and the store holds exactly the 201s.
func TestBurstOnSaturatedCPU(t *testing.T) {
	const tpps, perTPP = 20, 10
	admin := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: tpps, DefaultStore: true, AdminPort: admin,
		DCRBlock: burstDCRBlock(t, "max_concurrent 2\n\t\tqueue_timeout 250ms")})
	var clients []*tppclient.Client
	var bodies [][]byte
	for i := 1; i <= tpps; i++ {
		c := newClient(t, g, i)
		for range perTPP {
			clients = append(clients, c)
			bodies = append(bodies, sign(t, c, c.Claims(), tppclient.SignOptions{}))
		}
	}

	stop := saturateCPU()
	answers := fire(t, clients, bodies)
	stop()

	statuses := map[int]int{}
	created := map[string]*tppclient.Response{}
	owner := map[string]*tppclient.Client{}
	for i, res := range answers {
		statuses[res.Status]++
		switch res.Status {
		case http.StatusCreated:
			id, _ := res.JSON["client_id"].(string)
			if id == "" || created[id] != nil {
				t.Fatalf("request %d: 201 without a new client_id: %s", i, res.Body)
			}
			created[id], owner[id] = res, clients[i]
		case http.StatusServiceUnavailable:
			if res.JSON["error"] != "temporarily_unavailable" || res.Header.Get("Retry-After") == "" {
				t.Fatalf("request %d: 503 without temporarily_unavailable and Retry-After: %v %s", i, res.Header, res.Body)
			}
		default:
			t.Fatalf("request %d: %d %s", i, res.Status, res.Body)
		}
	}
	if len(created) == 0 {
		t.Fatalf("nothing was registered: %v", statuses)
	}
	t.Logf("on a saturated CPU: %d × 201, %d × 503", statuses[http.StatusCreated], statuses[http.StatusServiceUnavailable])

	for id, res := range created {
		token, _ := res.JSON["registration_access_token"].(string)
		got, err := owner[id].Get(gatewaytest.Context(t), id, token)
		if err != nil || got.Status != http.StatusOK || got.JSON["client_id"] != id {
			t.Fatalf("GET %s after the burst: %v %+v", id, err, got)
		}
	}
	stored := storedClients(t, admin)
	want := make([]string, 0, len(created))
	for id := range created {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Fatalf("the store holds %d clients, the 201s were %d: a refused request left a registration behind, or a 201 is missing\nstored %v\n201s   %v", len(stored), len(want), stored, want)
	}
}

// saturateCPU keeps every core busy until the returned func is called.
func saturateCPU() (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 2 * runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for !done.Load() {
				for i := range 10000 {
					x += i * i
				}
			}
			_ = x
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// storedClients lists every live client_id through the admin API (GET /dcr/clients, every
// page), sorted.
func storedClients(t *testing.T, adminPort int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		url := fmt.Sprintf("http://127.0.0.1:%d/dcr/clients?limit=100", adminPort)
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		req, err := http.NewRequestWithContext(gatewaytest.Context(t), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var page struct {
			Clients []struct {
				ClientID string `json:"client_id"`
			} `json:"clients"`
			Next string `json:"next_cursor"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			t.Fatalf("GET /dcr/clients: %d %s", resp.StatusCode, raw)
		}
		for _, c := range page.Clients {
			ids = append(ids, c.ClientID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	slices.Sort(ids)
	return ids
}

// TestReplayRefusedBeforeCryptography: a used jti is refused before any key is fetched or any
// signature verified. After one registration the gateway restarts (its key cache empty) with
// the TPP's software_jwks_endpoint gone: a new request cannot be verified ("could not be
// fetched"), the replay is still refused as a replay. Then the directory's keys are replaced
// too: a new request's software statement no longer verifies, the replay is still refused as
// a replay; neither refusal changes the store.
func TestReplayRefusedBeforeCryptography(t *testing.T) {
	admin := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1, DefaultStore: true, AdminPort: admin})
	c := newClient(t, g, 1)
	used := sign(t, c, c.Claims(), tppclient.SignOptions{})
	register := func(body []byte) *tppclient.Response {
		t.Helper()
		res, err := c.Register(gatewaytest.Context(t), body, tppclient.ContentTypeJOSE, "")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	wantCreated(t, register(used))
	wantReplay := func(stage string) {
		t.Helper()
		res := register(used)
		if res.Status != http.StatusBadRequest || res.JSON["error"] != "invalid_client_metadata" || !strings.Contains(fmt.Sprint(res.JSON["error_description"]), "already been used") {
			t.Fatalf("%s: the replay got %d %s, want the replay refusal", stage, res.Status, res.Body)
		}
	}

	g.Stop()
	if err := os.Rename(g.Sandbox.Files.JWKSDir, g.Sandbox.Files.JWKSDir+".down"); err != nil {
		t.Fatal(err)
	}
	g.Restart()
	wantRejected(t, register(sign(t, c, c.Claims(), tppclient.SignOptions{})), 400, "invalid_client_metadata", "could not be fetched")
	wantReplay("software_jwks_endpoint down")

	g.Stop()
	other, err := jwk.PublicKeyOf(newRSAJWK(t, "someone-else"))
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(other)
	raw, _ := json.Marshal(set)
	if err := os.WriteFile(g.Sandbox.Files.DirectoryJWKS, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	g.Restart()
	res := register(sign(t, c, c.Claims(), tppclient.SignOptions{}))
	if res.Status != http.StatusBadRequest || res.JSON["error"] != "invalid_software_statement" {
		t.Fatalf("a new request with the directory's keys replaced: %d %s", res.Status, res.Body)
	}
	wantReplay("directory keys replaced")
	if n := len(storedClients(t, admin)); n != 1 {
		t.Fatalf("the store holds %d clients, want the one registration", n)
	}
}

// TestUpdateReplayScreenedAfterAuthentication: a PUT whose jti was used is refused as a
// replay only once its caller is authenticated. With a wrong registration access token it is
// 401 invalid_token, whatever its body (it learns nothing of the jti); with the right one it
// is the replay refusal. Neither changes the record. (Unlike TestReplayRefusedBeforeCryptography,
// the keys cannot be taken away here to show that no signature is verified first: an update
// of a registration with a revoked key set is then refused 503 by the revocation check, which
// runs before the screen, with any token.)
func TestUpdateReplayScreenedAfterAuthentication(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1, DefaultStore: true})
	c := newClient(t, g, 1)
	ctx := gatewaytest.Context(t)
	res, err := c.Register(ctx, sign(t, c, c.Claims(), tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil {
		t.Fatal(err)
	}
	wantCreated(t, res)
	state, err := tppclient.StateFromResponse(res)
	if err != nil {
		t.Fatal(err)
	}
	update := func(token string, body []byte) *tppclient.Response {
		t.Helper()
		res, err := c.Update(ctx, state.ClientID, token, body)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	claims := c.Claims()
	claims["client_name"] = "after the first update"
	used := sign(t, c, claims, tppclient.SignOptions{})
	if res := update(state.RegistrationAccessToken, used); res.Status != http.StatusOK {
		t.Fatalf("the first update: %d %s", res.Status, res.Body)
	}
	stored := func() string {
		t.Helper()
		res, err := c.Get(ctx, state.ClientID, state.RegistrationAccessToken)
		if err != nil || res.Status != http.StatusOK {
			t.Fatalf("read: %v %+v", err, res)
		}
		return string(res.Body)
	}
	before := stored()
	for _, stage := range []string{"the first replay", "the second replay"} {
		if res := update("wrong-"+state.RegistrationAccessToken, used); res.Status != http.StatusUnauthorized || res.JSON["error"] != "invalid_token" {
			t.Fatalf("%s: with a wrong token it got %d %s, want 401 invalid_token", stage, res.Status, res.Body)
		}
		res := update(state.RegistrationAccessToken, used)
		if res.Status != http.StatusBadRequest || res.JSON["error"] != "invalid_client_metadata" || !strings.Contains(fmt.Sprint(res.JSON["error_description"]), "already been used") {
			t.Fatalf("%s: with the right token it got %d %s, want the replay refusal", stage, res.Status, res.Body)
		}
	}
	if after := stored(); after != before {
		t.Fatalf("the registration changed with the refusals:\n%s\nwant\n%s", after, before)
	}
}
