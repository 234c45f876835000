// Package plan decides what meshroll does next from a snapshot of the
// cluster, a policy and the current time, without ever touching a cluster:
// version paths, skew rules, waves, gates and rollback are pure functions so
// they can be table-tested exhaustively.
package plan

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is an Istio release number as found in image tags and chart
// versions. Parsing is tolerant because tags in the wild carry image variants
// ("1.23.2-distroless"), development builds ("1.24-dev") and a leading "v".
type Version struct {
	Major, Minor, Patch int
	// Pre is a pre-release suffix ("dev", "alpha.1", "rc.0"); a pre-release
	// sorts before the release it precedes.
	Pre string
}

// ParseVersion reads "1.23.2", "v1.23.2", "1.23.2-distroless", "1.24-dev",
// "1.24.0-alpha.1" or "1.23"; a missing patch is 0. Anything after "+" is
// build metadata and ignored.
func ParseVersion(s string) (Version, error) {
	in := s
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "+")
	core, pre, _ := strings.Cut(s, "-")
	// Image variants name how an image is built, not which release it is, so
	// they are dropped rather than treated as pre-releases.
	for _, variant := range [...]string{"distroless", "debug"} {
		pre = strings.TrimSuffix(pre, variant)
		pre = strings.TrimSuffix(pre, "-")
	}
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("failed to parse version %q: want major.minor[.patch]", in)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("failed to parse version %q: %q is not a number", in, p)
		}
		nums[i] = n
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2], Pre: pre}, nil
}

// MustParseVersion is ParseVersion for constants in tests and tables; it
// panics on malformed input, so never feed it cluster data.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String renders the version as major.minor.patch[-pre].
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// MarshalText writes a version as "1.24.2" in JSON and YAML, the spelling
// users type, rather than as a struct of numbers.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses what MarshalText wrote.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
// Pre-releases sort before their release and among themselves by text.
func (v Version) Compare(o Version) int {
	for _, d := range [...]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	case v.Pre < o.Pre:
		return -1
	default:
		return 1
	}
}

// MinorsBehind returns how many minor releases v is older than o (negative
// when v is newer). Different majors count as far apart: Istio has never
// promised compatibility across a major.
func (v Version) MinorsBehind(o Version) int {
	const acrossMajor = 1000
	if v.Major != o.Major {
		if v.Major < o.Major {
			return acrossMajor
		}
		return -acrossMajor
	}
	return o.Minor - v.Minor
}
