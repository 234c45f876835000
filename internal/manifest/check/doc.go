// Package check validates rendered Kubernetes and Istio manifests before they
// reach a cluster. Platform teams (Auto Trader's upgrade pipeline is the model)
// run a few dozen such validators in CI because a bad manifest found at apply
// time, in the middle of a control-plane upgrade, is far more expensive than one
// found in review. Every validator lives in its own file, has a stable code
// (MV001…), a severity and a fix hint, and is pure: it reads an Input and
// returns Findings, with no cluster and no network.
//
//go:generate go run ./schemagen -out schemas
package check
