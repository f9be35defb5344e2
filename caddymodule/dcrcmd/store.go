package dcrcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/storage/bolt"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// importBatch is how many records one transaction of the migration writes.
const importBatch = 256

// newStoreCmd is `caddy dcr store`: operations on the registration store.
func newStoreCmd(x *exiter) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Operate on the registration store", Args: cobra.ArbitraryArgs, RunE: x.group}
	cmd.AddCommand(newStoreMigrateCmd(x))
	return cmd
}

type storeMigrateFlags struct {
	from, to    string
	storageRoot string
	prefix      string
	path        string
	config      string
	adapter     string
}

func newStoreMigrateCmd(x *exiter) *cobra.Command {
	f := &storeMigrateFlags{}
	cmd := &cobra.Command{
		Use:   "migrate --from caddy --to bolt [--storage-root DIR | --config FILE] [--path FILE]",
		Short: "Copy the registry of the caddy store into the embedded bolt store",
		Long: `Copies every registration (live ones and tombstones, at their versions) and every
unexpired one-time key (replay cache, consumed tokens) of the caddy store, kept in Caddy's
storage under --prefix, into the bolt store's file, then checks that every registration
is in the file and that its indexes are consistent, and says what it did.

It is idempotent: a registration already in the file at the same version is left as it
is (and one at a newer version, written since an earlier run, is kept), so running it
twice changes nothing the second time. The source is only read.

Caddy's storage is the file system at --storage-root (default: Caddy's data directory),
or the storage module of the config given with --config. The file is --path, else the
path of a 'storage bolt' in that config, else dcr/registry.db in Caddy's data directory.
Stop the gateway first: the file is locked while a Caddy uses it.

Exit status: 0 when every registration was verified in the file, 1 otherwise, 2 for a
usage error.`,
		Args: x.noArgs,
		RunE: x.run(func(cmd *cobra.Command) (int, error) {
			err := f.run(cmd.Context(), cmd.OutOrStdout())
			if err != nil {
				return codeFor(err), err
			}
			return ExitOK, nil
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&f.from, "from", "", "the store to copy from: caddy (required)")
	fs.StringVar(&f.to, "to", "", "the store to copy into: bolt (required)")
	fs.StringVar(&f.storageRoot, "storage-root", "", "root of Caddy's file system storage (default: Caddy's data directory)")
	fs.StringVar(&f.prefix, "prefix", bolt.CaddyStoragePrefix, "the caddy store's key prefix")
	fs.StringVar(&f.path, "path", "", "the bolt store's file (default: from --config, else dcr/registry.db in Caddy's data directory)")
	fs.StringVar(&f.config, "config", "", "Caddy config whose storage (and storage bolt path) to use")
	fs.StringVar(&f.adapter, "adapter", "", "adapter of --config (default: by its name, as caddy run)")
	return cmd
}

func (f *storeMigrateFlags) run(ctx context.Context, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.from != "caddy" || f.to != "bolt" {
		return usagef("only --from caddy --to bolt is supported, got --from %q --to %q", f.from, f.to)
	}
	if f.config != "" && f.storageRoot != "" {
		return usagef("--storage-root and --config both name Caddy's storage; give one")
	}
	storage, path, err := f.locations()
	if err != nil {
		return err
	}
	src := caddystorage.New(storage, f.prefix)
	dst, err := bolt.Open(path, nil)
	if err != nil {
		return err
	}
	defer dst.Close()
	fmt.Fprintf(out, "migrating the caddy store (Caddy storage %s, prefix %s/) into %s\n", storage, f.prefix, dst.Path)

	// Registrations, in batches of one transaction each.
	var (
		read, live, tombs int
		outcomes          = map[bolt.ImportOutcome]int{}
		versions          = map[string]int64{}
		batch             []*dcr.Registration
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		got, err := dst.Import(batch)
		if err != nil {
			return err
		}
		for _, o := range got {
			outcomes[o]++
		}
		batch = batch[:0]
		return nil
	}
	err = src.EachRegistration(ctx, func(rec *dcr.Registration) error {
		read++
		if rec.Deleted() {
			tombs++
		} else {
			live++
		}
		versions[rec.ClientID] = rec.Version
		batch = append(batch, rec)
		if len(batch) == importBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("copying registrations: %w", err)
	}
	fmt.Fprintf(out, "registrations: %d read (%d live, %d tombstones): %d copied, %d already there at the same version, %d replaced by a newer version, %d kept (newer in the file)\n",
		read, live, tombs, outcomes[bolt.Imported], outcomes[bolt.Unchanged], outcomes[bolt.Replaced], outcomes[bolt.KeptNewer])

	var keys, keysCopied int
	err = src.EachOnceKey(ctx, func(h [32]byte, expires time.Time) error {
		keys++
		wrote, err := dst.ImportOnce(h, expires)
		if wrote {
			keysCopied++
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("copying one-time keys: %w", err)
	}
	fmt.Fprintf(out, "one-time keys: %d unexpired read: %d copied, %d already there\n", keys, keysCopied, keys-keysCopied)

	// The deny list (strike-offs): entries already in the file are kept.
	denied, err := src.DenyList(ctx)
	if err != nil {
		return fmt.Errorf("reading the deny list: %w", err)
	}
	deniedCopied := 0
	for _, e := range denied {
		added, err := dst.AddDenial(ctx, e, dcr.MaxDenyListEntries)
		if err != nil {
			return fmt.Errorf("copying the deny list entry for %s %s: %w", e.Kind, e.ID, err)
		}
		if added {
			deniedCopied++
		}
	}
	fmt.Fprintf(out, "deny list: %d entries read: %d copied, %d already there\n", len(denied), deniedCopied, len(denied)-deniedCopied)

	// Verify: every source record is in the file at its version or newer, and the file is
	// consistent as a whole.
	verified := 0
	var missing []string
	for id, version := range versions {
		rec, err := dst.Lookup(id)
		switch {
		case err == nil && rec.Version >= version:
			verified++
		case err == nil || errors.Is(err, dcr.ErrNotFound):
			missing = append(missing, id)
		default:
			return fmt.Errorf("verifying %s: %w", id, err)
		}
	}
	st, err := dst.Check()
	if err != nil {
		return err
	}
	if len(missing) > 0 || len(st.Problems) > 0 {
		return fmt.Errorf("verification failed: %d of %d registrations in the file (missing: %q); problems: %q",
			verified, len(versions), missing, st.Problems)
	}
	fmt.Fprintf(out, "verified: %d of %d registrations in the file; the file holds %d (%d live, %d tombstones) and %d one-time keys, indexes consistent\n",
		verified, len(versions), st.Registrations, st.Live, st.Tombstones, st.OnceKeys)

	err = dst.MarkMigrated(bolt.MigrationInfo{From: fmt.Sprintf("%s prefix %s", storage, f.prefix),
		At: time.Now().UTC(), Registrations: read, OnceKeys: keys})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "done: a dcr block without a storage line now runs on %s; the old registry in Caddy storage was left as it was\n", dst.Path)
	return nil
}

// locations finds Caddy's storage and the bolt file: from --config when given, else the
// file system storage at --storage-root (default: Caddy's data directory, as Caddy's own
// default storage).
func (f *storeMigrateFlags) locations() (certmagic.Storage, string, error) {
	path := f.path
	if f.config == "" {
		root := f.storageRoot
		if root == "" {
			root = caddy.AppDataDir()
		}
		return &certmagic.FileStorage{Path: root}, path, nil
	}
	raw, _, _, err := caddycmd.LoadConfig(f.config, f.adapter)
	if err != nil {
		return nil, "", usagef("reading --config: %v", err)
	}
	var cfg struct {
		Storage json.RawMessage `json:"storage"`
		Apps    json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, "", usagef("decoding --config: %v", err)
	}
	if path == "" {
		if path, err = boltPathIn(cfg.Apps); err != nil {
			return nil, "", err
		}
	}
	if len(cfg.Storage) == 0 {
		return &certmagic.FileStorage{Path: caddy.AppDataDir()}, path, nil
	}
	var mod struct {
		Module string `json:"module"`
	}
	if err := json.Unmarshal(cfg.Storage, &mod); err != nil || mod.Module == "" {
		return nil, "", usagef("the config's storage has no module name")
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(cfg.Storage, &fields)
	delete(fields, "module")
	modRaw, _ := json.Marshal(fields)
	cctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	loaded, err := cctx.LoadModuleByID("caddy.storage."+mod.Module, modRaw)
	if err != nil {
		return nil, "", fmt.Errorf("loading the config's storage: %w", err)
	}
	conv, ok := loaded.(caddy.StorageConverter)
	if !ok {
		return nil, "", fmt.Errorf("storage module %s is not a Caddy storage", mod.Module)
	}
	storage, err := conv.CertMagicStorage()
	if err != nil {
		return nil, "", fmt.Errorf("opening the config's storage: %w", err)
	}
	return storage, path, nil
}

// boltPathIn finds the path of the `storage bolt` with a path in a config's apps, by walking
// the JSON (dcr handlers can sit anywhere in a route tree). Several different ones are a
// usage error: the operator says which with --path.
func boltPathIn(apps json.RawMessage) (string, error) {
	var tree any
	if len(apps) == 0 || json.Unmarshal(apps, &tree) != nil {
		return "", nil
	}
	found := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch n := v.(type) {
		case map[string]any:
			if p, ok := n["path"].(string); ok && p != "" && (n["storage"] == "bolt" || n["backend"] == "bolt") { // "backend": the previous release's key
				found[p] = true
			}
			for _, c := range n {
				walk(c)
			}
		case []any:
			for _, c := range n {
				walk(c)
			}
		}
	}
	walk(tree)
	if len(found) > 1 {
		return "", usagef("the config has %d bolt stores with different paths; say which with --path", len(found))
	}
	for p := range found {
		return p, nil
	}
	return "", nil
}
