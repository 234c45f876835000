package vmagent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// entryClient reads and annotates one WorkloadEntry over plain HTTPS: a GET
// and a JSON merge patch are all the agent needs, which is why it carries no
// Kubernetes client library. Its token may be scoped to this one object
// (Role with resourceNames: get, patch).
type entryClient struct {
	http      *http.Client
	url       string
	tokenFile string
}

func newEntryClient(c Config) (*entryClient, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read API server CA %q: %w", c.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("failed to read API server CA %q: no PEM certificate in it", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	group, version, ok := strings.Cut(c.APIVersion, "/")
	if !ok {
		return nil, fmt.Errorf("apiVersion %q is not group/version", c.APIVersion)
	}
	return &entryClient{
		http: &http.Client{Transport: tr, Timeout: 15 * time.Second},
		url: fmt.Sprintf("%s/apis/%s/%s/namespaces/%s/workloadentries/%s",
			strings.TrimRight(c.APIServer, "/"), group, version, c.Namespace, c.Name),
		tokenFile: c.TokenFile,
	}, nil
}

// entryMeta is the part of a WorkloadEntry the agent reads.
type entryMeta struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// Get returns the WorkloadEntry's annotations.
func (e *entryClient) Get(ctx context.Context) (map[string]string, error) {
	b, err := e.do(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	var m entryMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("failed to parse WorkloadEntry %q: %w", e.url, err)
	}
	return m.Metadata.Annotations, nil
}

// Annotate merges annotations into the WorkloadEntry (a nil value removes one).
func (e *entryClient) Annotate(ctx context.Context, ann map[string]*string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return fmt.Errorf("failed to encode status patch: %w", err)
	}
	_, err = e.do(ctx, http.MethodPatch, body)
	return err
}

func (e *entryClient) do(ctx context.Context, method string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("failed to build request for WorkloadEntry %q: %w", e.url, err)
	}
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	if e.tokenFile != "" {
		tok, err := os.ReadFile(e.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read agent token %q: %w", e.tokenFile, err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to reach API server for WorkloadEntry %q: %w", e.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read WorkloadEntry %q: %w", e.url, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("failed to %s WorkloadEntry %q: %s: %s", strings.ToLower(method), e.url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
