package vmagent

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// layout is the agent's directory:
//
//	versions/<revision>@<version>/   an unpacked artifact plus etc/ (bootstrap files)
//	current -> versions/<slot>        what the service runs
//	downloads/                        verified and partial artifacts
//	journal.json                      what the agent is doing (see journal)
type layout struct{ root string }

func (l layout) versions() string         { return filepath.Join(l.root, "versions") }
func (l layout) slot(a Assignment) string { return filepath.Join(l.versions(), a.String()) }
func (l layout) current() string          { return filepath.Join(l.root, "current") }
func (l layout) downloads() string        { return filepath.Join(l.root, "downloads") }
func (l layout) journal() string          { return filepath.Join(l.root, "journal.json") }

func (l layout) ensure() error {
	for _, d := range []string{l.root, l.versions(), l.downloads()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("failed to create directory %q: %w", d, err)
		}
	}
	return nil
}

// Current is the assignment the current symlink points at (zero if none).
func (l layout) Current() (Assignment, error) {
	target, err := os.Readlink(l.current())
	if errors.Is(err, os.ErrNotExist) {
		return Assignment{}, nil
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("failed to read symlink %q: %w", l.current(), err)
	}
	return parseSlot(filepath.Base(target))
}

func parseSlot(name string) (Assignment, error) {
	rev, ver, ok := strings.Cut(name, "@")
	if !ok {
		return Assignment{}, fmt.Errorf("version directory %q is not <revision>@<version>", name)
	}
	return Assignment{Revision: rev, Version: ver}, nil
}

// Installed says a complete slot exists (slots appear only by rename).
func (l layout) Installed(a Assignment) bool {
	st, err := os.Stat(l.slot(a))
	return err == nil && st.IsDir()
}

// Install unpacks the artifact and writes the bootstrap files into a
// temporary directory, fsyncs it and renames it into place, so a slot either
// exists complete or not at all.
func (l layout) Install(a Assignment, tarball string, maxBytes int64, files map[string][]byte) error {
	tmp := filepath.Join(l.versions(), ".tmp-"+a.String())
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("failed to clear %q: %w", tmp, err)
	}
	if err := unpack(tarball, tmp, maxBytes); err != nil {
		_ = os.RemoveAll(tmp)
		return diskError(err)
	}
	etc := filepath.Join(tmp, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return diskError(fmt.Errorf("failed to create %q: %w", etc, err))
	}
	for name, b := range files {
		p := filepath.Join(etc, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			_ = os.RemoveAll(tmp)
			return diskError(fmt.Errorf("failed to write bootstrap file %q: %w", p, err))
		}
		if err := syncFile(p); err != nil {
			return err
		}
	}
	// Every directory of the slot is synced before the rename publishes it,
	// so a power cut never leaves a slot with entries missing.
	err := filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(p)
	})
	if err != nil {
		return fmt.Errorf("failed to sync %q: %w", tmp, err)
	}
	dst := l.slot(a)
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("failed to clear %q: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("failed to move %q into place: %w", dst, err)
	}
	return syncDir(l.versions())
}

// Switch points current at a slot: a new symlink renamed over the old one
// (rename is atomic), then the directory is fsynced so the switch survives a
// power cut.
func (l layout) Switch(a Assignment) error {
	tmp := l.current() + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("versions", a.String()), tmp); err != nil {
		return fmt.Errorf("failed to create symlink %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, l.current()); err != nil {
		return fmt.Errorf("failed to switch %q to %s: %w", l.current(), a, err)
	}
	return syncDir(l.root)
}

// Prune removes slots beyond the newest retain, never one in keep, and
// temporary directories left by a killed install.
func (l layout) Prune(retain int, keep ...Assignment) error {
	entries, err := os.ReadDir(l.versions())
	if err != nil {
		return fmt.Errorf("failed to list %q: %w", l.versions(), err)
	}
	type slot struct {
		name string
		mod  int64
	}
	var slots []slot
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			_ = os.RemoveAll(filepath.Join(l.versions(), e.Name()))
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		slots = append(slots, slot{e.Name(), info.ModTime().UnixNano()})
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i].mod > slots[j].mod })
	kept := 0
	for _, s := range slots {
		protected := false
		for _, k := range keep {
			protected = protected || k.String() == s.name
		}
		if protected || kept < retain-len(keep) {
			if !protected {
				kept++
			}
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.versions(), s.name)); err != nil {
			return fmt.Errorf("failed to remove old version %q: %w", s.name, err)
		}
	}
	return nil
}

// unpack extracts a .tar.gz into dir, refusing paths that leave dir, links
// and more than maxBytes of content.
func unpack(tarball, dir string, maxBytes int64) error {
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("failed to open artifact %q: %w", tarball, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return permanent(fmt.Errorf("artifact %q is not gzip: %w", tarball, err))
	}
	tr := tar.NewReader(gz)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return permanent(fmt.Errorf("artifact %q is not a valid tar: %w", tarball, err))
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return permanent(fmt.Errorf("artifact %q holds %q, outside its directory", tarball, h.Name))
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("failed to create %q: %w", p, err)
			}
		case tar.TypeReg:
			total += h.Size
			if total > maxBytes {
				return permanent(fmt.Errorf("artifact %q unpacks to over %d bytes (maxArtifactBytes)", tarball, maxBytes))
			}
			if err := writeFile(p, tr, os.FileMode(h.Mode)&0o755|0o600); err != nil {
				return err
			}
		default:
			return permanent(fmt.Errorf("artifact %q holds %q of type %c; only files and directories are allowed", tarball, h.Name, h.Typeflag))
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", filepath.Dir(p), err)
	}
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("failed to create %q: %w", p, err)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("failed to write %q: %w", p, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("failed to sync %q: %w", p, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("failed to write %q: %w", p, err)
	}
	return nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("failed to open %q for sync: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync %q: %w", p, err)
	}
	return nil
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return fmt.Errorf("failed to open directory %q for sync: %w", d, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync directory %q: %w", d, err)
	}
	return nil
}
