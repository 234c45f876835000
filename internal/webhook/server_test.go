package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"testing"
	"time"
)

// testServer serves h with a fresh certificate for 127.0.0.1 and returns the
// base URL, a client trusting only that certificate's CA, and the CA.
func testServer(tb testing.TB, h http.Handler) (string, *http.Client, []byte) {
	tb.Helper()
	certPEM, keyPEM, caPEM, err := issueCert([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc, errc := make(chan string, 1), make(chan error, 1)
	go func() { errc <- Serve(ctx, "127.0.0.1:0", pair, h, func(a string) { addrc <- a }) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			tb.Errorf("Serve() = %v after cancel, want nil", err)
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		tb.Fatalf("Serve() = %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	tb.Cleanup(tr.CloseIdleConnections)
	return "https://" + addr, &http.Client{Transport: tr, Timeout: 5 * time.Second}, caPEM
}

func TestServe(t *testing.T) {
	base, client, _ := testServer(t, NewHandler(NewTable(), nil))
	resp, err := client.Get(base + PathHealthz)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}

	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11, //nolint:gosec // probing the server's floor
	}}}
	if resp, err := old.Get(base + PathHealthz); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 handshake succeeded, want TLS 1.2 or newer only")
	}
}

func TestServeListenError(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := Serve(ctx, "256.0.0.1:0", tls.Certificate{}, http.NotFoundHandler(), nil); err == nil {
		t.Error("Serve() on an invalid address succeeded")
	}
}
