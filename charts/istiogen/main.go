// Command istiogen packages Istio's base, istiod and gateway charts of the
// releases meshroll supports from the istio.io/istio Go module into
// charts/istio/<chart>-<release>.tgz (`make generate` runs it), which the
// binary embeds so a controller in a cluster renders Istio without a Go
// toolchain.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/meshroll/meshroll/internal/istio"
)

func main() {
	out := "charts/istio"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	if err := run(context.Background(), out); err != nil {
		fmt.Fprintf(os.Stderr, "istiogen: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string) error {
	// The demo mesh's release and the upgrade target the e2e tests run:
	// about 105 KiB of archives each.
	for _, v := range []string{"1.23.2", "1.24.2"} {
		src, err := istio.ModuleSource{}.ChartsDir(ctx, v)
		if err != nil {
			return err
		}
		for _, comp := range []istio.Component{istio.Base, istio.Istiod, istio.Gateway} {
			ch, err := loader.LoadDir(filepath.Join(src, filepath.FromSlash(string(comp))))
			if err != nil {
				return fmt.Errorf("failed to load chart %q of istio %s: %w", comp, v, err)
			}
			// helm package stamps times into the archive: an archive already
			// there is kept, so a generate run leaves the tree clean
			// (TestArchiveSourceMatchesModule checks their content).
			if _, err := os.Stat(filepath.Join(out, ch.Name()+"-"+v+".tgz")); err == nil {
				continue
			}
			// Istio's module carries development versions; the archive
			// carries the release it is for, as Istio's own repository does.
			ch.Metadata.Version, ch.Metadata.AppVersion = v, v
			if _, err := chartutil.Save(ch, out); err != nil {
				return fmt.Errorf("failed to package chart %q of istio %s: %w", comp, v, err)
			}
		}
	}
	return nil
}
