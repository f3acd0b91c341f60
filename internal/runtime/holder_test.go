package runtime

import (
	"os"
	"testing"
)

func TestHolderHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	if got := HolderHost(NewHolder()); got != host {
		t.Errorf("HolderHost(NewHolder()) = %q, want this host, %q", got, host)
	}
	for _, h := range []string{"", "test", "a:b", "a:b:c:d"} {
		if got := HolderHost(h); got != "" {
			t.Errorf("HolderHost(%q) = %q, want \"\": not a holder NewHolder makes", h, got)
		}
	}
}
