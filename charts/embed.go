// Package charts ships meshroll's own Helm chart inside the binary, so
// `meshroll install-controller` needs neither a checkout nor a chart
// repository: the chart and the binary that runs it always match.
package charts

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// MeshrollDir is the chart's directory under charts/.
const MeshrollDir = "meshroll"

// files holds charts/meshroll; "all:" keeps _helpers.tpl, which embed would
// otherwise skip for its leading underscore.
//
//go:embed all:meshroll
var files embed.FS

// Meshroll loads the embedded meshroll chart.
func Meshroll() (*chart.Chart, error) {
	var buf []*loader.BufferedFile
	err := fs.WalkDir(files, MeshrollDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		buf = append(buf, &loader.BufferedFile{Name: strings.TrimPrefix(p, MeshrollDir+"/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read embedded chart %q: %w", MeshrollDir, err)
	}
	c, err := loader.LoadFiles(buf)
	if err != nil {
		return nil, fmt.Errorf("failed to load embedded chart %q: %w", MeshrollDir, err)
	}
	return c, nil
}
