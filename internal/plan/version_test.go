package plan

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{in: "1.23.2", want: Version{1, 23, 2, ""}},
		{in: "v1.23.2", want: Version{1, 23, 2, ""}},
		{in: "1.23.2-distroless", want: Version{1, 23, 2, ""}},
		{in: "1.23.2-debug", want: Version{1, 23, 2, ""}},
		{in: "1.24-dev", want: Version{1, 24, 0, "dev"}},
		{in: "1.24.0-alpha.1", want: Version{1, 24, 0, "alpha.1"}},
		{in: "1.24.0-alpha.1-distroless", want: Version{1, 24, 0, "alpha.1"}},
		{in: "1.23", want: Version{1, 23, 0, ""}},
		{in: "1.23.2+build.5", want: Version{1, 23, 2, ""}},
		{in: " 1.22.1 ", want: Version{1, 22, 1, ""}},
		{in: "", wantErr: true},
		{in: "latest", wantErr: true},
		{in: "1", wantErr: true},
		{in: "1.2.3.4", wantErr: true},
		{in: "1.x.3", wantErr: true},
		{in: "1.-2.3", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseVersion(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("ParseVersion(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.23.2", "1.23.2", 0},
		{"1.23.2", "1.23.2-distroless", 0},
		{"1.23.1", "1.23.2", -1},
		{"1.23.2", "1.22.9", 1},
		{"1.24-dev", "1.24.0", -1},
		{"1.24.0", "1.24-dev", 1},
		{"1.24.0-alpha.1", "1.24.0-beta.0", -1},
		{"2.0.0", "1.99.99", 1},
		{"1.9.0", "1.10.0", -1},
	}
	for _, tt := range tests {
		if got := MustParseVersion(tt.a).Compare(MustParseVersion(tt.b)); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestVersionString(t *testing.T) {
	for in, want := range map[string]string{"1.23": "1.23.0", "v1.24-dev": "1.24.0-dev", "1.23.2-distroless": "1.23.2"} {
		if got := MustParseVersion(in).String(); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMustParseVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseVersion(\"bad\") did not panic")
		}
	}()
	MustParseVersion("bad")
}
