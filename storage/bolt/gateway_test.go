package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	"github.com/dcrgate/dcrgate/storage/bolt"
)

// These tests run the real gateway binary on the bolt store, kill it, restart it, upgrade an
// old deployment to it, and read the file afterwards (the running gateway holds its lock).

// block is the example protection set; the per-software limit of the default policy would
// cap the registrations a load makes, so it is off.
const block = gatewaytest.DefaultDCRBlock + "\n\t\tdefault_policy off\n"

func defaultDBPath(g *gatewaytest.Gateway) string {
	// The gateway runs with XDG_DATA_HOME=DataDir: Caddy's data directory is DataDir/caddy.
	return filepath.Join(g.DataDir, "caddy", "dcr", "registry.db")
}

func tpp(t *testing.T, g *gatewaytest.Gateway, i int) *tppclient.Client {
	t.Helper()
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(i), g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type answered struct {
	client        *tppclient.Client
	body          []byte
	clientID, rat string
}

// kill -9 during a registration load: after the restart every registration answered 201 is
// there and readable with its token, none is torn, no index entry is orphaned, and no jti
// of an answered request can be used again.
func TestCrashDuringRegistrationLoad(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: block, DefaultStore: true})
	clients := []*tppclient.Client{tpp(t, g, 1), tpp(t, g, 2)}
	const (
		workers   = 8
		killAfter = 60 // answered registrations before the kill; the load goes on meanwhile
	)
	var (
		mu       sync.Mutex
		done     []answered
		killed   = make(chan struct{})
		killOnce sync.Once
		count    atomic.Int64
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := range workers {
		wg.Go(func() {
			c := clients[w%len(clients)]
			for ctx.Err() == nil {
				body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				r, err := c.Register(ctx, body, "", "")
				if err != nil {
					select {
					case <-killed:
						return // the gateway is gone: the load ends
					default:
						t.Errorf("register before the kill: %v", err)
						return
					}
				}
				switch r.Status {
				case 201:
					st, err := tppclient.StateFromResponse(r)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					done = append(done, answered{c, body, st.ClientID, st.RegistrationAccessToken})
					mu.Unlock()
					if count.Add(1) == killAfter {
						killOnce.Do(func() { close(killed); g.Kill() })
					}
				default:
					select {
					case <-killed:
						return
					default:
						t.Errorf("register under load: %d %s", r.Status, r.Body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	select {
	case <-killed:
	default:
		t.Fatal("the load ended before the gateway was killed")
	}

	g.Restart()
	rctx := gatewaytest.Context(t)
	for _, a := range done {
		r, err := a.client.Get(rctx, a.clientID, a.rat)
		if err != nil || r.Status != 200 || r.JSON["client_id"] != a.clientID {
			t.Errorf("registration %s answered 201 before the crash: GET = %v %v", a.clientID, r, err)
			continue
		}
		r, err = a.client.Register(rctx, a.body, "", "")
		if err != nil || r.Status != 400 || r.JSON["error"] != "invalid_client_metadata" {
			t.Errorf("replay of the request that made %s after the crash: %v %v", a.clientID, r, err)
		}
	}
	g.Stop()

	s, err := bolt.Open(defaultDBPath(g), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) > 0 {
		t.Errorf("the file after the crash: %q", st.Problems)
	}
	// Some requests may have committed without their 201 reaching the client; none of the
	// answered ones may be missing, and each software's entries are exactly its records.
	if st.Live < len(done) {
		t.Errorf("%d live registrations in the file, %d were answered 201", st.Live, len(done))
	}
	indexed := 0
	for _, c := range clients {
		ids, err := s.ListBySoftware(context.Background(), c.SoftwareID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != st.BySoftware[c.SoftwareID] {
			t.Errorf("software %s: %d listed, %d index entries", c.SoftwareID, len(ids), st.BySoftware[c.SoftwareID])
		}
		for _, id := range ids {
			rec, err := s.Get(context.Background(), id)
			if err != nil || rec.SoftwareID != c.SoftwareID || rec.RegistrationTokenHash == "" || rec.Metadata == nil {
				t.Errorf("record %s: %+v, %v", id, rec, err)
			}
		}
		indexed += len(ids)
	}
	if indexed != st.Live {
		t.Errorf("%d registrations listed by software, %d live records", indexed, st.Live)
	}
	// Each registration of the load used one jti, claimed in the transaction of its record:
	// no key without its record (a claim whose registration the crash lost), no record
	// without its key (an answered jti lost), and each record has its registered event.
	if st.OnceKeys != st.Live {
		t.Errorf("%d one-time keys in the file for %d registrations, want one each", st.OnceKeys, st.Live)
	}
	for _, c := range clients {
		ids, _ := s.ListBySoftware(context.Background(), c.SoftwareID)
		for _, id := range ids {
			events, err := s.History(context.Background(), dcr.HistoryOfClient, id, time.Time{})
			if err != nil || len(events) != 1 || events[0].Event != dcr.EventRegistered {
				t.Errorf("history of %s: %+v %v, want its registered event", id, events, err)
			}
		}
	}
	t.Logf("%d answered 201 before the kill; %d live records after the restart", len(done), st.Live)
}

// An old deployment (caddy store) upgraded to a Caddyfile without a storage line: the gateway
// refuses to start and prints the command; the command migrates; the gateway starts and the
// old client reads its registration, and its old request is still a replay.
func TestUpgradeRefusesThenMigrates(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: block + "\t\tstorage caddy\n"})
	c := tpp(t, g, 1)
	ctx := gatewaytest.Context(t)
	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Register(ctx, body, "", "")
	if err != nil || r.Status != 201 {
		t.Fatalf("register on the caddy store: %v %v", r, err)
	}
	old, err := tppclient.StateFromResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	g.Stop()

	upgraded := strings.Replace(g.Caddyfile, "\t\tstorage caddy\n", "", 1)
	if upgraded == g.Caddyfile {
		t.Fatal("the Caddyfile had no storage line to remove")
	}
	g.WriteCaddyfile(upgraded)
	out, err := g.Command("run", "--config", filepath.Join(g.Dir, "Caddyfile"), "--adapter", "caddyfile").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the upgraded gateway started (or did not run): %v\n%s", err, out)
	}
	m := regexp.MustCompile(`caddy (dcr store migrate --from caddy --to bolt[^;]*?) ;`).FindSubmatch(out)
	if m == nil || !strings.Contains(string(out), "storage caddy") {
		t.Fatalf("the refusal does not print the command and the alternative:\n%s", out)
	}
	t.Logf("printed: caddy %s", m[1])
	if _, err := os.Stat(defaultDBPath(g)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start created %s: %v", defaultDBPath(g), err)
	}

	// The printed command, as the operator would paste it.
	out, err = g.Command(strings.Fields(string(m[1]))...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified: 1 of 1 registrations") {
		t.Fatalf("the printed migrate command: %v\n%s", err, out)
	}

	g.Restart()
	r, err = c.Get(gatewaytest.Context(t), old.ClientID, old.RegistrationAccessToken)
	if err != nil || r.Status != 200 || r.JSON["client_id"] != old.ClientID {
		t.Fatalf("the old client after the migration: %v %v", r, err)
	}
	r, err = c.Register(gatewaytest.Context(t), body, "", "")
	if err != nil || r.Status != 400 {
		t.Errorf("the old request after the migration (its jti was migrated): %v %v", r, err)
	}

	// A second process on the file while the gateway holds it fails at once, naming it.
	out, err = g.Command(strings.Fields(string(m[1]))...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another Caddy process") || !strings.Contains(string(out), defaultDBPath(g)) {
		t.Errorf("migrate while the gateway runs: %v\n%s", err, out)
	}
	if !strings.Contains(g.Logs(), "was migrated into this file") {
		t.Errorf("the gateway did not log that it runs on a migrated file")
	}
}

// A second gateway configured on a file another gateway holds fails at start and says why.
// It is the same Caddyfile: Caddy provisions every module before it binds a listener, so
// the store's file lock is what stops it, not a port.
func TestSecondGatewayOnTheSameFileFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	storage := fmt.Sprintf("\t\tstorage bolt {\n\t\t\tpath %s\n\t\t}\n", path)
	a := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: block + storage})
	out, err := a.Command("run", "--config", filepath.Join(a.Dir, "Caddyfile"), "--adapter", "caddyfile").CombinedOutput()
	if err == nil {
		t.Fatalf("a second gateway started on %s:\n%s", path, out)
	}
	for _, want := range []string{path, "another Caddy process"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the second gateway's error does not say %q:\n%s", want, out)
		}
	}
	// The first one is unaffected.
	c := tpp(t, a, 1)
	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Register(gatewaytest.Context(t), body, "", ""); err != nil || r.Status != 201 {
		t.Errorf("the first gateway after the second one's failed start: %v %v", r, err)
	}
}

// A config reload provisions the new handler while the old one still runs: the new store
// takes the open file from the pool (a second open would wait for the file lock and fail),
// and everything registered before is there after.
func TestReloadKeepsTheRegistry(t *testing.T) {
	adminPort := gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: block, DefaultStore: true, AdminPort: adminPort})
	c := tpp(t, g, 1)
	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Register(gatewaytest.Context(t), body, "", "")
	if err != nil || r.Status != 201 {
		t.Fatalf("register: %v %v", r, err)
	}
	st, err := tppclient.StateFromResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		out, err := g.Command("reload", "--force", "--config", filepath.Join(g.Dir, "Caddyfile"), "--adapter", "caddyfile",
			"--address", fmt.Sprintf("127.0.0.1:%d", adminPort)).CombinedOutput()
		if err != nil {
			t.Fatalf("reload #%d: %v\n%s", i+1, err, out)
		}
	}
	ctx := gatewaytest.Context(t)
	if r, err := c.Get(ctx, st.ClientID, st.RegistrationAccessToken); err != nil || r.Status != 200 {
		t.Errorf("GET after the reloads: %v %v", r, err)
	}
	if r, err := c.Register(ctx, body, "", ""); err != nil || r.Status != 400 {
		t.Errorf("replay after the reloads: %v %v", r, err)
	}
	body2, _ := c.Sign(c.Claims(), tppclient.SignOptions{})
	if r, err := c.Register(ctx, body2, "", ""); err != nil || r.Status != 201 {
		t.Errorf("register after the reloads: %v %v", r, err)
	}
	g.Stop()
	s, err := bolt.Open(defaultDBPath(g), nil)
	if err != nil {
		t.Fatalf("the file after a stop (the last store let it go?): %v", err)
	}
	defer s.Close()
	if st, err := s.Check(); err != nil || st.Live != 2 || len(st.Problems) > 0 {
		t.Errorf("the file after reloads: %+v, %v", st, err)
	}
}
