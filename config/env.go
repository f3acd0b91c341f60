package config

import (
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnv expands variables in every scalar value under n, as the
// package comment describes.
func (d *decoder) expandEnv(n *yaml.Node, p keyPath, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.expandEnv(c, p, lookup)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expandEnv(c, p.index(i), lookup)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch {
			case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
				d.expandEnv(v, p, lookup)
			case k.Kind == yaml.ScalarNode:
				d.expandEnv(v, p.field(k.Value), lookup)
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		inURL := len(p) == 3 && p[0].key == "resources" && (p[2].key == "url" || p[2].key == "item_url")
		keep := TemplateFuncs
		if inURL && p[2].key == "item_url" {
			keep = append(slices.Clip(TemplateFuncs), ItemPlaceholders...)
		}
		out, changed, errs := expandString(n.Value, lookup, inURL, keep)
		for _, e := range errs {
			d.addf(n.Line, p, "%s", e)
		}
		if !changed {
			return
		}
		n.Value = out
		if out == "" {
			n.Tag = "!!null"
		}
	}
	// Aliases are expanded where their anchor is.
}

// expandString expands the variables of one value. It reports whether
// anything changed, and the problems found (which never hold a value).
// keep are the ${…} names left for a URL template (the placeholders);
// in a URL (inURL), a ${…} that is neither a variable nor one of them is
// left for the template to refuse.
func expandString(s string, lookup func(string) (string, bool), inURL bool, keep []string) (string, bool, []string) {
	var b strings.Builder
	var errs []string
	changed := false
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			changed = true
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			if !inURL {
				errs = append(errs, "unclosed ${ (write $${ for a literal ${)")
			}
			b.WriteString(s[i:])
			break
		}
		ref := s[i : i+end+1]
		body := ref[2 : len(ref)-1]
		i += end + 1
		name := envName(body)
		rest := body[len(name):]
		def, hasDef := strings.CutPrefix(rest, ":-")
		switch {
		case name != "" && slices.Contains(keep, name):
			// A URL placeholder, not a variable.
			b.WriteString(ref)
			continue
		case name == "" || (rest != "" && !hasDef):
			if !inURL {
				errs = append(errs, "bad variable reference "+ref+": want ${NAME} or ${NAME:-default} (write $${ for a literal ${)")
			}
			b.WriteString(ref)
			continue
		}
		var v string
		ok := false
		if lookup != nil {
			v, ok = lookup(name)
		}
		switch {
		case ok && (v != "" || !hasDef):
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			errs = append(errs, "environment variable "+name+" is not set (write ${"+name+":-default} for a default)"+didYouMean(name, setNames(lookup)))
		}
		changed = true
	}
	return b.String(), changed, errs
}

// setNames lists the variables of the process's environment that lookup
// sees set: the names a misspelt ${NAME} may have meant.
func setNames(lookup func(string) (string, bool)) []string {
	if lookup == nil {
		return nil
	}
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := lookup(name); ok && name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// envName returns the variable name at the start of s, or "".
func envName(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if letter || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return s[:i]
	}
	return s
}
