package redact

import "testing"

func TestURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"https://api.example.com/v1/items", "https://api.example.com/v1/items"},
		{"https://user:pw@api.example.com/x", "https://api.example.com/x"},
		{"https://user@api.example.com:8443", "https://api.example.com:8443"},
		{"https://u:p@ss@api.example.com/x", "https://api.example.com/x"},
		{"https://api.example.com/x?api_key=k1&page=2", "https://api.example.com/x?api_key=REDACTED&page=REDACTED"},
		{"https://api.example.com/x?since=&token", "https://api.example.com/x?since=&REDACTED"},
		{"https://api.example.com/x?", "https://api.example.com/x?"},
		{"https://api.example.com/x#access_token=t", "https://api.example.com/x"},
		{"https://api.example.com/people/a@b.com?q=x#f", "https://api.example.com/people/a@b.com?q=REDACTED"},
		{"/relative?token=t#frag", "/relative?token=REDACTED"},
		{"//user:pw@host/x", "//host/x"},
		{"/contacts?since=${gmtDate:yyyy-MM-dd'T'HH:mm:ss}&order=x", "/contacts?since=REDACTED&order=REDACTED"},
		{"stdout", "stdout"},
		// Unparseable: everything before the last "@" goes.
		{"https://user:p%zz@host/x?k=v", "https://host/x?k=REDACTED"},
		{"https://user:pass/word@host/x", "https://host/x"},
		{"user:pass/word@host", "host"},
		{"user:pw@hooks.example.com/in", "hooks.example.com/in"},
		{"mailto:someone@example.com", "example.com"},
		// Lists of servers, as NATS clients take them.
		{"nats://u:pw@a:4222,nats://tok@b:4222", "nats://a:4222,nats://b:4222"},
		{"nats://a:4222, tls://u:pw@b:4443", "nats://a:4222, tls://b:4443"},
		{"https://api.example.com/x?ids=1,2&k=v", "https://api.example.com/x?ids=REDACTED&k=REDACTED"},
		{"https://u:p@api.example.com/a,b", "https://api.example.com/a,b"},
	}
	for _, tt := range tests {
		if got := URL(tt.raw); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
