// Command kube-apiserver is the upstream kube-apiserver, built from the k8s.io/kubernetes module
// so the meshroll sandbox runs a real control plane without containers.
package main

import (
	"os"
	_ "time/tzdata" // CronJobs need zone data even on hosts without it.

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
