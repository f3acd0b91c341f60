package config

import (
	"errors"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestUnmarshalersReportAllErrors(t *testing.T) {
	// With plain yaml.v3 decoding too, bad values are collected, not fatal.
	var v struct {
		A Duration `yaml:"a"`
		B ByteSize `yaml:"b"`
		C Schedule `yaml:"c"`
		D Duration `yaml:"d"`
		E Duration `yaml:"e"`
	}
	err := yaml.Unmarshal([]byte("a: soon\nb: lots\nc: never\nd: 90s\ne: [1]\n"), &v)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a *yaml.TypeError", err)
	}
	if len(te.Errors) != 4 {
		t.Errorf("got %d errors, want 4: %q", len(te.Errors), te.Errors)
	}
	eq(t, "d decoded after the errors", v.D.D(), 90*time.Second)
}

func TestParseSchedule(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 2, 0, 0, time.UTC)
	tests := []struct {
		spec string
		next time.Time
		err  bool
	}{
		{spec: "5m", next: at.Add(5 * time.Minute)},
		{spec: "@every 30s", next: at.Add(30 * time.Second)},
		{spec: "*/5 * * * *", next: time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC)},
		{spec: "@hourly", next: time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)},
		{spec: "500ms", err: true},
		{spec: "-5m", err: true},
		{spec: "@every", err: true},
		{spec: "* * *", err: true},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if tt.err {
			if err == nil {
				t.Errorf("ParseSchedule(%q) succeeded, want an error", tt.spec)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.spec, err)
			continue
		}
		if got := s.Next(at); !got.Equal(tt.next) {
			t.Errorf("ParseSchedule(%q).Next = %v, want %v", tt.spec, got, tt.next)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{in: "1048576", want: 1 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "64MiB", want: 64 << 20},
		{in: "10MB", want: 10e6},
		{in: "0", err: true},
		{in: "-1KiB", err: true},
		{in: "9999999999GiB", err: true},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Value: tt.in, Line: 1})
		if (err != nil) != tt.err || (!tt.err && b != tt.want) {
			t.Errorf("ByteSize %q = %d, %v; want %d (error %v)", tt.in, b, err, tt.want, tt.err)
		}
	}
}

func TestParseScheduleTZPrefixWithoutLine(t *testing.T) {
	for _, spec := range []string{"TZ=", "TZ=Europe/Paris", "CRON_TZ=UTC ", "TZ=Nowhere/Land 0 6 * * *"} {
		if _, err := ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded", spec)
		}
	}
	if _, err := ParseSchedule("TZ=Europe/Paris 0 6 * * *"); err != nil {
		t.Errorf("a valid TZ= line: %v", err)
	}
}
