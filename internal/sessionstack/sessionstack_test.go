package sessionstack

import "testing"

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mode
		ok   bool
	}{
		{"redis", Redis, true},
		{"memory", Memory, true},
		{"", "", false},
		{"Redis", "", false},
		{"disk", "", false},
	} {
		t.Run("-store "+tt.in, func(t *testing.T) {
			got, err := ParseMode(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseMode(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}
