package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The decoder turns a yaml.Node tree into the schema types. It does the job
// of yaml.v3's strict decoding, but goes on after every mistake and keeps the
// key path and line of each, so that a user sees all errors of a file at
// once, each in the words of the file.

// segment is one step of a key path: a key, or an index into a list.
type segment struct {
	key   string
	index int
}

// keyPath is the path of a value from the top of the file, such as
// resources[1].dates.updated_format.
type keyPath []segment

func (p keyPath) field(k string) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, segment{key: k})
}

func (p keyPath) index(i int) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, segment{index: i})
}

// String writes p with indices: resources[1].url.
func (p keyPath) String() string { return p.render(nil) }

// render writes p, naming the items of sources, resources and destinations
// by their name where c gives one: resources[contacts].url.
func (p keyPath) render(c *Config) string {
	var b strings.Builder
	for i, s := range p {
		if s.key != "" {
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
			continue
		}
		name := ""
		if i == 1 && c != nil {
			name = c.itemName(p[0].key, s.index)
		}
		if name != "" {
			b.WriteString("[" + name + "]")
		} else {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		}
	}
	return b.String()
}

// itemName is the name of item i of the named top-level list, or "" when it
// has none fit to show in a path.
func (c *Config) itemName(list string, i int) string {
	var name string
	switch {
	case list == "sources" && i < len(c.Sources):
		name = c.Sources[i].Name
	case list == "resources" && i < len(c.Resources):
		name = c.Resources[i].Name
	case list == "destinations" && i < len(c.Destinations):
		name = c.Destinations[i].Name
	}
	if !validName(name) {
		return ""
	}
	return name
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// problem is an error found while loading, before its path is rendered.
type problem struct {
	line int
	path keyPath
	msg  string
}

// maxDecodeSteps bounds the work of decoding, so that a file of aliases of
// aliases (a "billion laughs") fails instead of running for ever.
const maxDecodeSteps = 200000

type decoder struct {
	problems []problem
	// lines holds, for each key path present in the file, the line of its
	// key (or of the list item).
	lines map[string]int
	// bad holds the paths that have a problem already; later checks of
	// the same path say nothing more (a value that failed to decode is
	// not also reported as missing).
	bad map[string]bool
	// meant holds the paths of keys that an unknown key probably meant:
	// they are not reported as missing.
	meant map[string]bool
	steps int
	// dropped counts the problems beyond maxProblems.
	dropped int
}

// maxProblems is the most errors reported for one file.
const maxProblems = 100

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}, bad: map[string]bool{}, meant: map[string]bool{}}
}

func (d *decoder) addf(line int, p keyPath, format string, args ...any) {
	d.bad[p.String()] = true
	if len(d.problems) >= maxProblems {
		d.dropped++
		return
	}
	d.problems = append(d.problems, problem{line: line, path: p, msg: fmt.Sprintf(format, args...)})
}

// has reports whether p was written in the file.
func (d *decoder) has(p keyPath) bool {
	_, ok := d.lines[p.String()]
	return ok
}

// line is the line of p, or of its closest ancestor written in the file.
func (d *decoder) line(p keyPath) int {
	for i := len(p); i > 0; i-- {
		if l, ok := d.lines[p[:i].String()]; ok {
			return l
		}
	}
	return 0
}

// defaulter is a schema type that fills in its defaults before it is
// decoded, so that a key left out keeps its default and a key written
// (even as 0) is validated as written.
type defaulter interface{ setDefaults() }

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode decodes n into v, which is addressable.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, p keyPath) {
	if !d.step(n, p) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // left out: the default stays
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
		var te *yaml.TypeError
		switch {
		case errors.As(err, &te):
			for _, m := range te.Errors {
				d.addf(n.Line, p, "%s", lineRE.ReplaceAllString(m, ""))
			}
		case err != nil:
			d.addf(n.Line, p, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			e := reflect.New(v.Type().Elem())
			if df, ok := e.Interface().(defaulter); ok {
				df.setDefaults()
			}
			v.Set(e)
		}
		d.decode(n, v.Elem(), p)
	case reflect.Struct:
		d.mapping(n, v, p)
	case reflect.Slice:
		d.sequence(n, v, p)
	case reflect.Map:
		d.stringMap(n, v, p)
	default:
		d.scalar(n, v, p)
	}
}

// step counts one step of decoding and reports whether to go on.
func (d *decoder) step(n *yaml.Node, p keyPath) bool {
	d.steps++
	if d.steps == maxDecodeSteps+1 {
		d.addf(n.Line, p, "the file expands to too much (aliases of aliases?)")
	}
	return d.steps <= maxDecodeSteps
}

var lineRE = regexp.MustCompile(`^line \d+: `)

// field is one key of a struct.
type field struct {
	name  string
	index int
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fs = append(fs, field{name: name, index: i})
	}
	return fs
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, p keyPath) {
	fs := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, p, "want a mapping of %s (got %s)", keyList(fs), describeNode(n))
		return
	}
	pairs := d.pairs(n, p)
	var unused []field // the keys not written, for suggestions
	for _, f := range fs {
		if !slices.ContainsFunc(pairs, func(kv pair) bool { return kv.key.Value == f.name }) {
			unused = append(unused, f)
		}
	}
	for _, kv := range pairs {
		name := kv.key.Value
		if len(p) == 0 && strings.HasPrefix(name, "x-") {
			continue // a place for anchors, as in docker-compose files
		}
		i := fieldIndex(fs, name)
		if i < 0 {
			if best := closest(name, unused); best != "" {
				d.meant[p.field(best).String()] = true
				d.addf(kv.key.Line, p.field(name), "unknown key; did you mean %s?", best)
			} else {
				d.addf(kv.key.Line, p.field(name), "unknown key; valid keys here are %s", keyList(fs))
			}
			continue
		}
		fp := p.field(name)
		d.lines[fp.String()] = kv.key.Line
		d.decode(kv.value, v.Field(fs[i].index), fp)
	}
}

func fieldIndex(fs []field, name string) int {
	for i, f := range fs {
		if f.name == name {
			return i
		}
	}
	return -1
}

func keyList(fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// closest returns the key of fs that got is probably a misspelling of, or
// "".
func closest(got string, fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return closestWord(strings.ReplaceAll(got, "-", "_"), names)
}

// closestWord returns the word of valid that got is probably a misspelling
// of (a letter or two off, case aside), or "".
func closestWord(got string, valid []string) string {
	best, bestD := "", math.MaxInt
	for _, s := range valid {
		if d := editDistance(strings.ToLower(got), strings.ToLower(s)); d < bestD {
			best, bestD = s, d
		}
	}
	if got == "" || bestD > 2 || bestD*3 > len(best) {
		return ""
	}
	return best
}

// editDistance is the number of letters inserted, deleted, changed or
// swapped with their neighbour that turn a into b (the optimal string
// alignment distance).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

type pair struct{ key, value *yaml.Node }

// pairs lists the keys of a mapping with their values, merging in "<<"
// keys as YAML merge keys do (the mapping's own keys win), and reporting
// keys written twice and keys that are not names.
func (d *decoder) pairs(n *yaml.Node, p keyPath) []pair {
	var own, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSource(v, p, map[*yaml.Node]bool{n: true})...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.addf(k.Line, p, "want a key name (got %s as a key)", describeNode(k))
			continue
		}
		if first, ok := seen[k.Value]; ok {
			d.addf(k.Line, p.field(k.Value), "key written twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{k, v})
	}
	out := own
	for _, kv := range merged {
		if _, ok := seen[kv.key.Value]; ok {
			continue
		}
		seen[kv.key.Value] = kv.key.Line
		out = append(out, kv)
	}
	return out
}

// mergeSource lists the pairs a merge key's value brings in: a mapping or
// a list of mappings, usually aliases. Earlier mappings win.
func (d *decoder) mergeSource(v *yaml.Node, p keyPath, visiting map[*yaml.Node]bool) []pair {
	if !d.step(v, p) {
		return nil
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if visiting[v] {
		d.addf(v.Line, p, "merge key (<<) refers to the mapping that holds it")
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		visiting[v] = true
		defer delete(visiting, v)
		var out, merged []pair
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merged = append(merged, d.mergeSource(val, p, visiting)...)
				continue
			}
			if k.Kind == yaml.ScalarNode {
				out = append(out, pair{k, val})
			}
		}
		return append(out, merged...)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				d.addf(item.Line, p, "merge key (<<) wants a mapping or a list of mappings (got %s)", describeNode(item))
				continue
			}
			out = append(out, d.mergeSource(item, p, visiting)...)
		}
		return out
	}
	d.addf(v.Line, p, "merge key (<<) wants a mapping or a list of mappings (got %s)", describeNode(v))
	return nil
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, p keyPath) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = "; write [value] for a list of one"
		} else if n.Kind == yaml.MappingNode {
			hint = "; start each item with \"- \""
		}
		d.addf(n.Line, p, "want a list (got %s)%s", describeNode(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ip := p.index(i)
		d.lines[ip.String()] = item.Line
		e := reflect.New(v.Type().Elem())
		if df, ok := e.Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.decode(item, e.Elem(), ip)
		s = reflect.Append(s, e.Elem())
	}
	v.Set(s)
}

func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, p keyPath) {
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, p, "want a mapping of names to values (got %s)", describeNode(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(n, p) {
		kp := p.field(kv.key.Value)
		d.lines[kp.String()] = kv.key.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(kv.value, e, kp)
		m.SetMapIndex(reflect.ValueOf(kv.key.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// scalar decodes a single value into a string, number or bool. A quoted
// number is a number: "${LIMIT}" is as good as ${LIMIT}.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, p keyPath) {
	want := map[reflect.Kind]string{
		reflect.String: "a string", reflect.Bool: "true or false",
		reflect.Int: "a whole number", reflect.Int64: "a whole number",
		reflect.Float64: "a number",
	}[v.Kind()]
	if want == "" {
		d.addf(n.Line, p, "cannot decode into %s", v.Type())
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.addf(n.Line, p, "want %s (got %s)", want, describeNode(n))
		return
	}
	s := n.Value
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.addf(n.Line, p, "want true or false (got %q)", s)
		}
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.addf(n.Line, p, "want a whole number (got %q)", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.addf(n.Line, p, "want a number (got %q)", s)
			return
		}
		v.SetFloat(f)
	}
}

// sortProblems orders problems by line, keeping the order of the checks
// within a line.
func sortProblems(ps []problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
}
