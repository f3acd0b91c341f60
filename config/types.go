package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as Go writes it: 30s, 5m, 1h30m.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads a duration string. Its errors are *yaml.TypeError,
// so that decoding goes on and reports every bad value of a file.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n, "a duration such as 30s, 5m or 1h30m"); err != nil {
		return err
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return typeError(n, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 30s, 5m or 1h30m (got %q)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("want a positive duration (got %q)", s)
	}
	return v, nil
}

// ByteSize is a size in bytes, written as a number or with a unit:
// 512KiB, 64MiB, 1GiB, 10MB.
type ByteSize int64

// UnmarshalYAML reads a size. Its errors are *yaml.TypeError.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n, "a size such as 1048576, 512KiB or 64MiB"); err != nil {
		return err
	}
	s := strings.TrimSpace(n.Value)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/mult {
		return typeError(n, fmt.Errorf("want a size such as 1048576, 512KiB or 64MiB (got %q)", n.Value))
	}
	*b = ByteSize(v * mult)
	return nil
}

// Secret is a string that never prints: its String and MarshalYAML give
// "<secret>". Use string(s) where the value itself is needed.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML hides the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON hides the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// Schedule says when a resource is polled: a duration ("5m"), "@every 30s",
// or a cron line ("*/5 * * * *", with an optional "TZ=Europe/Paris " prefix,
// or a descriptor such as @hourly).
type Schedule struct {
	// Spec is the text as written.
	Spec string
	// Every is the interval of a duration or @every schedule; zero for cron.
	Every time.Duration
	// Cron is the parsed cron line; nil for an interval.
	Cron cron.Schedule
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule.
func ParseSchedule(spec string) (Schedule, error) {
	s := Schedule{Spec: spec}
	spec = strings.TrimSpace(spec)
	if d, err := time.ParseDuration(spec); err == nil {
		s.Every = d
	} else if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return s, fmt.Errorf("want @every and a duration such as @every 30s (got %q)", spec)
		}
		s.Every = d
	} else {
		c, err := parseCron(spec)
		if err != nil {
			return s, fmt.Errorf("want a duration (5m), @every 30s or a cron line such as \"*/5 * * * *\" (got %q: %w)", spec, err)
		}
		s.Cron = c
		return s, nil
	}
	if s.Every < time.Second {
		return s, fmt.Errorf("want an interval of at least 1s (got %q)", spec)
	}
	return s, nil
}

// parseCron parses a cron line, with its optional TZ= or CRON_TZ= prefix.
// The cron library panics on a prefix with no line after it, so that case
// is refused first, and any other panic becomes an error.
func parseCron(spec string) (c cron.Schedule, err error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		if _, line, ok := strings.Cut(spec, " "); !ok || strings.TrimSpace(line) == "" {
			return nil, fmt.Errorf("a time zone prefix needs a cron line after it, as in TZ=Europe/Paris 0 6 * * *")
		}
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("unparseable cron line")
		}
	}()
	return cronParser.Parse(spec)
}

// UnmarshalYAML reads a schedule. Its errors are *yaml.TypeError.
func (s *Schedule) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n, "a duration (5m), @every 30s or a cron line"); err != nil {
		return err
	}
	v, err := ParseSchedule(n.Value)
	if err != nil {
		return typeError(n, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the schedule as it was written.
func (s Schedule) MarshalYAML() (any, error) { return s.Spec, nil }

// Next returns the first time after t that the schedule fires.
func (s Schedule) Next(t time.Time) time.Time {
	if s.Cron != nil {
		return s.Cron.Next(t)
	}
	return t.Add(s.Every)
}

// typeError wraps err as a *yaml.TypeError: yaml.v3 collects those and
// decodes on, where any other error would stop it at the first bad value.
func typeError(n *yaml.Node, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, err.Error())}}
}

// wantScalar reports a list or a mapping where a single value goes.
func wantScalar(n *yaml.Node, want string) error {
	if n.Kind == yaml.ScalarNode {
		return nil
	}
	return typeError(n, fmt.Errorf("want %s (got %s)", want, describeNode(n)))
}

// describeNode names what a node holds, for errors; it never prints the
// value of a scalar, which may be a secret.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	return "a single value"
}
