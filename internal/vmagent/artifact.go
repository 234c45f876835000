package vmagent

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
)

// permanentError is a failure retrying the same assignment cannot fix (bad
// checksum, bad signature, unknown version, disk full, invalid assignment):
// the agent reports Failed and waits for a new assignment.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err} }

// IsPermanent says err is final for its assignment.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// fetcher downloads artifacts, their checksum files and signatures.
type fetcher struct {
	http     *http.Client
	maxBytes int64
	key      ed25519.PublicKey
}

// artifact is a verified download.
type artifact struct {
	Path   string
	SHA256 string
}

// Fetch downloads url into dir (resuming a partial download left by an
// earlier attempt), then checks it against url.sha256 and, with a pinned key,
// the checksum file's signature url.sha256.sig. A file that fails a check is
// deleted so the next attempt starts over.
func (f *fetcher) Fetch(ctx context.Context, url, dir string) (artifact, error) {
	sums, err := f.small(ctx, url+".sha256")
	if err != nil {
		return artifact{}, err
	}
	if f.key != nil {
		sig, err := f.small(ctx, url+".sha256.sig")
		if err != nil {
			return artifact{}, err
		}
		if raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sig))); derr == nil {
			sig = raw
		}
		if !ed25519.Verify(f.key, sums, sig) {
			return artifact{}, permanent(fmt.Errorf("signature of %q does not verify with the pinned public key: the mirror serves a file not signed by the release key", url+".sha256"))
		}
	}
	want, err := parseChecksum(sums, path.Base(url))
	if err != nil {
		return artifact{}, permanent(fmt.Errorf("failed to read checksum file %q: %w", url+".sha256", err))
	}
	dst := dir + "/" + want + ".tar.gz"
	if got, err := fileSHA256(dst); err == nil && got == want {
		return artifact{Path: dst, SHA256: want}, nil // complete from an earlier attempt
	}
	part := dst + ".part"
	if err := f.download(ctx, url, part); err != nil {
		return artifact{}, err
	}
	got, err := fileSHA256(part)
	if err != nil {
		return artifact{}, err
	}
	if got != want {
		_ = os.Remove(part)
		return artifact{}, permanent(fmt.Errorf("checksum mismatch for %q: got sha256 %s, the checksum file says %s", url, got, want))
	}
	if err := syncFile(part); err != nil {
		return artifact{}, err
	}
	if err := os.Rename(part, dst); err != nil {
		return artifact{}, fmt.Errorf("failed to rename download %q: %w", part, err)
	}
	return artifact{Path: dst, SHA256: want}, syncDir(dir)
}

// download appends to part from where it stops (HTTP Range), or starts over
// when the server ignores the range.
func (f *fetcher) download(ctx context.Context, url, part string) error {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return permanent(fmt.Errorf("failed to build request for artifact %q: %w", url, err))
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return fmt.Errorf("failed to download artifact %q: %w", url, err)
	}
	defer resp.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		flags |= os.O_APPEND
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if resp.StatusCode != http.StatusOK {
			_ = os.Remove(part) // our partial file is longer than the artifact: start over
			return fmt.Errorf("failed to resume artifact %q: the server has a shorter file; starting over", url)
		}
		flags |= os.O_TRUNC
		have = 0
	default:
		return statusError(url, resp.StatusCode)
	}
	if resp.ContentLength > 0 && have+resp.ContentLength > f.maxBytes {
		return permanent(fmt.Errorf("artifact %q is %d bytes, over the limit of %d (maxArtifactBytes)", url, have+resp.ContentLength, f.maxBytes))
	}
	if err := checkFree(path.Dir(part), resp.ContentLength); err != nil {
		return err
	}
	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open download %q: %w", part, err)
	}
	n, err := io.Copy(out, io.LimitReader(resp.Body, f.maxBytes-have+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return diskError(fmt.Errorf("failed to download artifact %q after %d bytes (the next attempt resumes): %w", url, have+n, err))
	}
	if have+n > f.maxBytes {
		_ = os.Remove(part)
		return permanent(fmt.Errorf("artifact %q is over the limit of %d bytes (maxArtifactBytes)", url, f.maxBytes))
	}
	if resp.ContentLength >= 0 && n < resp.ContentLength {
		return fmt.Errorf("failed to download artifact %q: truncated at %d of %d bytes (the next attempt resumes)", url, have+n, have+resp.ContentLength)
	}
	return nil
}

// small GETs a checksum or signature file.
func (f *fetcher) small(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, permanent(fmt.Errorf("failed to build request for %q: %w", url, err))
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to reach artifact server for %q: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("failed to read %q: %w", url, err)
	}
	return b, nil
}

// statusError makes a 404 permanent (the mirror has no such version) and
// anything else transient.
func statusError(url string, code int) error {
	err := fmt.Errorf("failed to download %q: HTTP %d", url, code)
	if code == http.StatusNotFound || code == http.StatusForbidden {
		return permanent(fmt.Errorf("failed to download %q: HTTP %d: the mirror has no artifact for this version (unknown version or wrong artifactURL)", url, code))
	}
	return err
}

// parseChecksum reads "<hex>  <name>" lines (sha256sum's format) or a bare hex digest.
func parseChecksum(b []byte, name string) (string, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		fields := strings.Fields(l)
		if len(fields) == 0 {
			continue
		}
		if len(fields) == 1 && len(lines) == 1 || len(fields) >= 2 && strings.TrimPrefix(fields[1], "*") == name {
			if d, err := hex.DecodeString(fields[0]); err != nil || len(d) != sha256.Size {
				return "", fmt.Errorf("%q is not a SHA-256 digest", fields[0])
			}
			return strings.ToLower(fields[0]), nil
		}
	}
	return "", fmt.Errorf("no line for %q", name)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("failed to open %q: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("failed to hash %q: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parsePublicKey reads a PEM (PKIX) or base64 raw ed25519 public key.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("publicKey is not a PKIX public key: %w", err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("publicKey is a %T, want ed25519", k)
		}
		return ek, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("publicKey must be a PEM or base64 ed25519 public key")
	}
	return ed25519.PublicKey(raw), nil
}

// checkFree refuses a download the install directory's file system cannot
// hold (the artifact plus its unpacked copy), before writing a byte.
func checkFree(dir string, size int64) error {
	if size <= 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // not knowable here; the write itself reports ENOSPC
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < 3*size {
		return permanent(fmt.Errorf("install directory %q has %d bytes free, the artifact needs about %d (download and unpack): free disk space", dir, free, 3*size))
	}
	return nil
}

// diskError makes ENOSPC and EDQUOT permanent with a clear fix.
func diskError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return permanent(fmt.Errorf("%w: the install directory is full: free disk space", err))
	}
	return err
}
