// Package controlplane installs and removes Istio revisions side by side: it
// applies exactly what the manifest pipeline rendered, CRDs first, with
// server-side apply under the field manager "meshroll", and waits until the
// revision's istiod is available before it reports success.
package controlplane
