// Package gateway runs ingress gateways blue/green: one gateway Deployment per
// revision (a "colour", each with its own ClusterIP Service), and one
// LoadBalancer Service owned by meshroll whose selector names exactly one
// colour. An ingress outage hits end users at once, so a new colour is
// installed beside the old one, traffic moves only once it is fully ready,
// and moving back is the same single write.
//
// The decisions (which colour is live, whether a switch is allowed, the
// selector patch) are pure functions in decide.go; the rest reads and writes
// the cluster.
package gateway
