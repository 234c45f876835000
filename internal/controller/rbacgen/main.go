// Command rbacgen writes the meshroll chart's RBAC templates from
// internal/controller's Rules and CertRules (`make generate` runs it), so
// the chart grants exactly what the controller checks for and uses.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshroll/meshroll/internal/controller"
)

func main() {
	dir := "charts/meshroll"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	for name, b := range controller.ChartTemplates() {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "rbacgen: failed to write %q: %v\n", name, err)
			os.Exit(1)
		}
	}
}
