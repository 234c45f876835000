// Package gatetest provides real servers for tests of gates anywhere in the
// repository: a real Prometheus (the Debian binary), an exporter that serves
// Istio-shaped metrics on demand, and an HTTP backend whose error rate a test
// controls. Everything listens on 127.0.0.1 and is torn down by tb.Cleanup.
//
// A typical Prometheus gate test:
//
//	exp := gatetest.StartExporter(t)
//	prom := gatetest.StartPrometheus(t, exp.Address())
//	exp.Serve("shop", "cart", 200, 100)
//	prom.WaitForSeries(t, `istio_requests_total`)
//	p, _ := gate.NewPrometheus(prom.URL())
package gatetest
