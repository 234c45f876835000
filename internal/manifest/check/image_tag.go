package check

import "strings"

// imageTag reports images without a tag or with "latest": the pod's content
// then depends on when its node pulled, so a rollback does not roll back and
// two replicas may run different code.
type imageTag struct{}

// Name implements Checker.
func (imageTag) Name() string { return "image-tag" }

// Code implements Checker.
func (imageTag) Code() string { return "MV011" }

// Run implements Checker.
func (c imageTag) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		for _, nc := range containers(spec) {
			img := nc.c.Image
			if img == "auto" { // Istio's injector replaces it with the revision's proxy image
				continue
			}
			switch tag := imageTagOf(img); {
			case img == "":
				out = append(out, finding(c, Error, ref(u), nc.label()+" has no image", "set image to repository:tag or repository@sha256:digest"))
			case tag == "":
				out = append(out, finding(c, Warning, ref(u), nc.label()+" image "+quote(img)+" has no tag", "pin a version tag or a digest"))
			case tag == "latest":
				out = append(out, finding(c, Warning, ref(u), nc.label()+" image "+quote(img)+" uses the latest tag", "pin a version tag or a digest"))
			}
		}
	}
	return out
}

// imageTagOf returns the tag of an image reference, "@" for a digest, or "".
func imageTagOf(img string) string {
	if strings.Contains(img, "@") {
		return "@"
	}
	last := img[strings.LastIndex(img, "/")+1:]
	if _, tag, ok := strings.Cut(last, ":"); ok {
		return tag
	}
	return ""
}
