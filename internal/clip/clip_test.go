package clip

import "testing"

func TestBytes(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"héllo", 2, "h"}, // é is two bytes: not split
		{"héllo", 3, "hé"},
		{"a😀b", 4, "a"}, // four bytes
		{"a😀b", 5, "a😀"},
	}
	for _, tt := range tests {
		if got := Bytes(tt.s, tt.n); got != tt.want {
			t.Errorf("Bytes(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
		want := tt.want
		if len(want) < len(tt.s) {
			want += "…"
		}
		if got := Ellipsis(tt.s, tt.n); got != want {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", tt.s, tt.n, got, want)
		}
	}
}
