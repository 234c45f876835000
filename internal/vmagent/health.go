package vmagent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// checker health-checks the sidecar after a restart.
type checker struct {
	http       *http.Client
	readyURL   string
	versionURL string
	timeout    time.Duration
}

// Check waits until the readiness endpoint answers 200 twice in a row (a
// proxy that comes up and dies at once is not healthy) and, when a version
// endpoint is configured, it names version: the old process still answering
// on the port is not the new one being healthy.
func (c checker) Check(ctx context.Context, version string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ok, last := 0, "no answer yet"
	for {
		if err := c.probe(ctx, version); err != nil {
			ok, last = 0, err.Error()
		} else if ok++; ok >= 2 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sidecar %s not healthy within %s: %s", version, c.timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c checker) probe(ctx context.Context, version string) error {
	if _, err := c.get(ctx, c.readyURL); err != nil {
		return err
	}
	if c.versionURL == "" {
		return nil
	}
	body, err := c.get(ctx, c.versionURL)
	if err != nil {
		return err
	}
	if !strings.Contains(body, version) {
		return fmt.Errorf("%s does not report version %s", c.versionURL, version)
	}
	return nil
}

func (c checker) get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("failed to build request for %q: %w", url, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("failed to reach %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
