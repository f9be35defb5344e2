package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// CaddyStoragePrefix is where dcr.storage.caddy keeps its registry by default, the store
// the gateway used before this one became the default.
const CaddyStoragePrefix = "dcr"

// checkCaddyStorage opens the file for the implicit default store, unless Caddy's storage
// holds a registry of the caddy store that was not migrated into it: then the start is
// refused with the command that migrates it. The check is one listing of the prefix.
// The caddy store's layout: <prefix>/registrations, <prefix>/index, <prefix>/once.
func (s *Store) checkCaddyStorage(ctx caddy.Context, logger *zap.Logger) error {
	storage := ctx.Storage()
	found := false
	if storage != nil {
		keys, err := storage.List(ctx, CaddyStoragePrefix, false)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			// Fail closed: starting on an empty registry because the check could not run is
			// exactly the silent abandonment the check exists to prevent.
			return fmt.Errorf("bolt: checking Caddy storage (%s) for a registry of the caddy store under %q/: %w",
				storage, CaddyStoragePrefix, err)
		default:
			// Only the caddy store's own directories count: with Caddy's default storage
			// root, this store's file (dcr/registry.db) is itself under the prefix.
			for _, k := range keys {
				switch path.Base(k) {
				case "registrations", "index", "once":
					found = true
				}
			}
		}
	}
	if !found {
		return s.open(logger)
	}
	// A registry is there: fine only if it was migrated into this file. The file is not
	// created just to find that out.
	if _, err := os.Stat(s.Path); errors.Is(err, fs.ErrNotExist) {
		return refuseUnmigrated(storage, s.Path)
	}
	if err := s.open(logger); err != nil {
		return err
	}
	info, err := s.Migrated()
	if err != nil {
		_ = s.Cleanup()
		return err
	}
	if info == nil {
		_ = s.Cleanup()
		return refuseUnmigrated(storage, s.Path)
	}
	logger.Info("the registry of the caddy store in Caddy storage was migrated into this file; the old copy is not used",
		zap.String("path", s.Path), zap.Time("migrated_at", info.At),
		zap.Int("registrations", info.Registrations), zap.String("from", info.From))
	return nil
}

// refuseUnmigrated is the error that stops the start, with the command to run.
func refuseUnmigrated(storage certmagic.Storage, path string) error {
	return fmt.Errorf("dcr: Caddy storage (%s) holds a registry of the caddy store under %q/, and no storage is configured, "+
		"so this version would start on its new default, the embedded store %s, without those registrations. "+
		"Migrate them (stop Caddy first; it is idempotent and verifies the count): %s ; "+
		"or keep using them where they are: add `storage caddy` to the dcr block",
		storage, CaddyStoragePrefix, path, MigrateCommand(storage, path))
}

// MigrateCommand is the command line that migrates the registry in storage into the file at
// path: only the flags that differ from the defaults, so the common case reads
// `caddy dcr store migrate --from caddy --to bolt`.
func MigrateCommand(storage certmagic.Storage, path string) string {
	args := []string{"caddy", "dcr", "store", "migrate", "--from", "caddy", "--to", "bolt"}
	fsStorage, isFile := storage.(*certmagic.FileStorage)
	switch {
	case isFile && filepath.Clean(fsStorage.Path) != filepath.Clean(caddy.AppDataDir()):
		args = append(args, "--storage-root", shellQuote(fsStorage.Path))
	case !isFile && storage != nil:
		// Another storage module: the command reads it from the config.
		args = append(args, "--config", "<your Caddy config>")
	}
	if filepath.Clean(path) != filepath.Clean(DefaultPath()) {
		args = append(args, "--path", shellQuote(path))
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
