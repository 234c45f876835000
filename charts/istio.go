package charts

import (
	"embed"
	"io/fs"
)

//go:embed istio/*.tgz
var istioArchives embed.FS

// IstioArchives holds `helm package`d archives of Istio's base, istiod and
// gateway charts, <chart>-<release>.tgz, for the releases charts/istiogen
// packages (`make generate`).
func IstioArchives() fs.FS {
	sub, err := fs.Sub(istioArchives, "istio")
	if err != nil {
		panic(err) // "istio" is a constant, valid path
	}
	return sub
}
