package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that Parse and ParseLocal never panic, that each returns
// either a result or Errors, and that ParseLocal agrees with Parse on every
// file Parse takes.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// ParseLocal reads a part of what Parse reads: it never panics
		// either, and takes every file Parse takes, with the same state.
		l, lerr := ParseLocal("fuzz.yaml", data, testEnv)
		if lerr != nil {
			var errs Errors
			if !errors.As(lerr, &errs) || len(errs) == 0 {
				t.Fatalf("ParseLocal: error is %T, want Errors: %v", lerr, lerr)
			}
		}
		c, err := Parse("fuzz.yaml", data, testEnv)
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			if lerr != nil || l.State.Path != c.State.Path || l.Listen != c.HTTP.Listen {
				t.Fatalf("Parse took the file (state %q, listen %q); ParseLocal gave %+v, %v", c.State.Path, c.HTTP.Listen, l, lerr)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is %T, want Errors: %v", err, err)
		}
	})
}
