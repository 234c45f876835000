// Package istio holds meshroll's knowledge of Istio itself: the labels and
// annotations that decide injection, revision and tag naming, the injector's
// configuration, and rendering a release's Helm charts. Everything that would
// change when Istio changes its conventions lives here and nowhere else.
package istio
