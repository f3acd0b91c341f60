package examples_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pollhook/pollhook/config"
)

// snippet is a config written out elsewhere than in an example: a YAML
// block of the README, or the config a deploy example carries.
type snippet struct {
	where string
	data  []byte
}

var yamlBlockRE = regexp.MustCompile("(?s)\n```yaml\n(.*?)\n```")

// readmeSnippets returns the README's YAML blocks.
func readmeSnippets(t *testing.T) []snippet {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	for _, m := range yamlBlockRE.FindAllSubmatchIndex(readme, -1) {
		line := bytes.Count(readme[:m[2]], []byte("\n")) + 1
		out = append(out, snippet{fmt.Sprintf("README.md:%d", line), readme[m[2]:m[3]]})
	}
	return out
}

// deploySnippets returns the configs of the deploy examples: every
// ConfigMap entry whose key ends in .yaml.
func deploySnippets(t *testing.T) []snippet {
	t.Helper()
	files, err := filepath.Glob("deploy/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc struct {
				Kind string            `yaml:"kind"`
				Data map[string]string `yaml:"data"`
			}
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for key, v := range doc.Data {
				if doc.Kind == "ConfigMap" && strings.HasSuffix(key, ".yaml") {
					out = append(out, snippet{f + ": ConfigMap data " + key, []byte(v)})
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no config in examples/deploy")
	}
	return out
}

// anyEnv gives every variable a value that passes validation.
func anyEnv(name string) (string, bool) {
	switch {
	case strings.Contains(name, "SECRET"):
		return testSecret, true
	case strings.HasSuffix(name, "_URL"):
		return "https://example.com/" + strings.ToLower(name), true
	}
	return "test-" + strings.ToLower(name), true
}

// apiSettings are the settings of a resource that the API decides: where
// to ask, in what order, how to read the answer and how to page it. The
// rest (schedule, lookback, start, destinations) is the user's to choose.
func apiSettings(r *config.Resource) string {
	p := r.Pagination
	first := "-"
	if p.FirstPage != nil {
		first = fmt.Sprint(*p.FirstPage)
	}
	p.MaxPages, p.FirstPage = 0, nil
	return fmt.Sprintf("url: %s\nitems: %s\nid_field: %s\ndates: %s %s %s / %s %s %s\npagination: %+v first page %s\ndeletes: %s",
		r.URL, r.Items, r.IDField,
		r.Dates.UpdatedField, r.Dates.UpdatedFormat, r.Dates.UpdatedTimezone,
		r.Dates.CreatedField, r.Dates.CreatedFormat, r.Dates.CreatedTimezone,
		p, first, r.Deletes)
}

// endpoint is a resource's API endpoint: its source's base URL and its
// URL's path.
func endpoint(c *config.Config, r *config.Resource) string {
	path, _, _ := strings.Cut(r.URL, "?")
	if u, err := url.Parse(path); err == nil && u.IsAbs() {
		return u.Scheme + "://" + u.Host + u.Path
	}
	return strings.TrimSuffix(c.Source(r.Source).BaseURL, "/") + path
}

// TestSnippetsAgreeWithExamples: each real API has one source of truth,
// its example. Every config written out in the README or in
// examples/deploy loads, and each of its resources that polls an
// endpoint an example polls does so with the example's settings: the
// same URL (its order and date parameters), items, id field, date fields
// and formats, pagination and deletes.
func TestSnippetsAgreeWithExamples(t *testing.T) {
	truth := map[string]struct {
		file     string
		settings string
	}{}
	for _, file := range exampleFiles(t) {
		env := requiredEnv[file]
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(file, data, func(name string) (string, bool) { v, ok := env[name]; return v, ok })
		if err != nil {
			t.Fatalf("load %s: %v", file, err)
		}
		for i := range cfg.Resources {
			r := &cfg.Resources[i]
			truth[endpoint(cfg, r)] = struct{ file, settings string }{file, apiSettings(r)}
		}
	}

	compared := 0
	for _, s := range append(readmeSnippets(t), deploySnippets(t)...) {
		var top map[string]any
		if err := yaml.Unmarshal(s.data, &top); err != nil {
			t.Errorf("%s: not YAML: %v", s.where, err)
			continue
		}
		if _, ok := top["sources"]; !ok {
			continue // a part of a config, such as an http: block
		}
		cfg, err := config.Parse(s.where, s.data, anyEnv)
		if err != nil {
			t.Errorf("%s: the config does not load:\n%v", s.where, err)
			continue
		}
		for i := range cfg.Resources {
			r := &cfg.Resources[i]
			want, ok := truth[endpoint(cfg, r)]
			if !ok {
				continue
			}
			compared++
			if got := apiSettings(r); got != want.settings {
				t.Errorf("%s: resources[%s] polls %s as examples/%s does, with other settings:\n%s\nthe example has:\n%s",
					s.where, r.Name, endpoint(cfg, r), want.file, got, want.settings)
			}
		}
	}
	if compared < 2 {
		t.Errorf("compared %d resources with the examples; the README's configuration reference and the Kubernetes sidecar poll Keap's contacts", compared)
	}
}
