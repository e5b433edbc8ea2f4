package didyoumean

import "testing"

func TestSuggest(t *testing.T) {
	known := []string{"accel", "machine", "devices"}
	for _, tc := range []struct{ w, want string }{
		{"acel", ` (did you mean "accel"?)`},
		{"devics", ` (did you mean "devices"?)`},
		{"mashine", ` (did you mean "machine"?)`},
		{"network", ""}, // too far from every known word
		{"", ""},
	} {
		if got := Suggest(tc.w, known); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.w, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"qemu", "qmeu", 2}, {"same", "same", 0}} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
