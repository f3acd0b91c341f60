package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is a mistake in a config file that the user can fix: where it is,
// and what is wrong and would be right. It never holds a secret's value.
type Error struct {
	// File is the config file's path as given to Load or Parse.
	File string
	// Line is the 1-based line of the mistake; 0 when unknown.
	Line int
	// Path is the key path, with list items named where they have a name:
	// resources[contacts].dates.updated_format.
	Path string
	// Msg says what is wrong and what would be valid.
	Msg string
}

// Error formats e as file:line: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every mistake found in a config file, ordered by line.
type Errors []*Error

// Error writes the errors one a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, for errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads, expands, decodes, defaults and validates the config file at
// path, with variables from the process environment. A config that is not
// right yields Errors listing every mistake.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load for a config already read: file names it in errors, and
// lookupEnv gives the value of ${NAME} variables (nil: none is set). A
// config that is not right yields Errors listing every mistake, and no
// Config.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	root, errs := parseYAML(file, data)
	if errs != nil {
		return nil, errs
	}
	d := newDecoder()
	d.expandEnv(root, nil, lookupEnv)
	c := &Config{}
	c.setDefaults()
	d.decode(root, reflect.ValueOf(c).Elem(), nil)
	c.File = file
	v := &validator{d: d, c: c}
	v.validate()
	if errs := d.errors(file, c); errs != nil {
		return nil, errs
	}
	return c, nil
}

// errors returns the problems found as Errors ordered by line, their paths
// rendered with the names of c's items; nil when there are none.
func (d *decoder) errors(file string, c *Config) Errors {
	if len(d.problems) == 0 {
		return nil
	}
	sortProblems(d.problems)
	out := make(Errors, len(d.problems))
	for i, p := range d.problems {
		out[i] = &Error{File: file, Line: p.line, Path: p.path.render(c), Msg: p.msg}
	}
	if d.dropped > 0 {
		out = append(out, &Error{File: file, Msg: fmt.Sprintf("and %d more errors", d.dropped)})
	}
	return out
}

// minimalConfig is shown when a file has no config at all.
const minimalConfig = `a minimal config is:
  sources:
    - name: api
      base_url: https://api.example.com
  resources:
    - name: items
      source: api
      object: item
      url: /items
  destinations:
    - name: console
      url: stdout`

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data into a node tree and returns its top mapping.
func parseYAML(file string, data []byte) (*yaml.Node, Errors) {
	fail := func(line int, msg string) Errors {
		return Errors{{File: file, Line: line, Msg: msg}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := safeDecode(dec, &doc)
	if errors.Is(err, io.EOF) {
		return nil, fail(1, "the file holds no config; "+minimalConfig)
	}
	if err != nil {
		return nil, Errors{yamlError(file, data, err)}
	}
	var next yaml.Node
	switch err := safeDecode(dec, &next); {
	case err == nil:
		return nil, fail(next.Line, "a config file holds one YAML document; remove this second one (and its ---)")
	case !errors.Is(err, io.EOF):
		return nil, Errors{yamlError(file, data, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fail(1, "the file holds no config; "+minimalConfig)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, fail(max(root.Line, 1), "the file holds no config; "+minimalConfig)
	}
	if root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "want a mapping of keys such as sources: and resources: at the top of the file (got "+describeNode(root)+"); "+minimalConfig)
	}
	return root, nil
}

// safeDecode decodes one document, turning a panic of the YAML parser on
// a malformed file into an error.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("yaml: the parser failed on this file")
		}
	}()
	return dec.Decode(n)
}

// yamlError turns a YAML syntax error into an Error at its line.
func yamlError(file string, data []byte, err error) *Error {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		// yaml.v3's reader errors (control characters, bad UTF-8) carry
		// no position: find the first byte YAML does not allow.
		e := &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
		if line, col, what, hint, ok := firstBadChar(data); ok {
			e.Line = line
			e.Msg += fmt.Sprintf(": %s at column %d; %s", what, col, hint)
		}
		return e
	}
	line, _ := strconv.Atoi(m[1])
	msg = m[2]
	lines := strings.SplitAfter(string(data), "\n")
	if e := tabError(file, lines, line, msg); e != nil {
		return e
	}
	if parserError(msg) {
		line = mistakeLine(lines, line, err.Error())
	}
	e := &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
	if strings.HasPrefix(msg, "did not find expected ','") && line <= len(lines) && strings.Contains(lines[line-1], "${") {
		e.Msg += `; inside { } or [ ] a value holding ${…} must be quoted, as in { token: "${TOKEN}" }`
	}
	return e
}

// tabError reports a tab in the indentation at its own line, or returns
// nil when msg is not about one. yaml.v3 reports "found a tab character
// that violates indentation" at the line above the tab, and a tab that
// starts a line as "found character that cannot start any token" at its
// line; both are the first line from there whose indentation holds a tab.
func tabError(file string, lines []string, reported int, msg string) *Error {
	if !strings.Contains(msg, "tab character") && !strings.HasPrefix(msg, "found character that cannot start any token") {
		return nil
	}
	for i := max(reported, 1) - 1; i < len(lines); i++ {
		indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
		if col := strings.IndexByte(indent, '\t'); col >= 0 {
			return &Error{File: file, Line: i + 1, Msg: fmt.Sprintf("invalid YAML: a tab in the indentation (column %d); indent with spaces: YAML does not allow tabs there", col+1)}
		}
		if strings.HasPrefix(msg, "found character") {
			break // that error is at its own line
		}
	}
	return nil
}

// firstBadChar finds the first character YAML does not allow in a
// stream (YAML 1.2, [1] c-printable): a control character other than
// tab, line feed and carriage return, or a byte that is not UTF-8. It
// returns its 1-based line and column (in characters), what it is and
// what to do about it.
func firstBadChar(data []byte) (line, col int, what, hint string, ok bool) {
	line, col = 1, 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		col++
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("byte 0x%02X, which is not UTF-8,", data[i]), "save the file as UTF-8", true
		case r == '\r' && i+1 < len(data) && data[i+1] == '\n':
			col-- // CR LF is one break, counted at the LF
		case r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029:
			line, col = line+1, 0 // YAML's line breaks
		case r == 0xFEFF && i == 0:
			col-- // a byte order mark is not a column
		case r == '\t' || r == 0xFEFF:
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r <= 0x9F) || r == 0xFFFE || r == 0xFFFF:
			return line, col, fmt.Sprintf("U+%04X", r), fmt.Sprintf(`remove it, or write it as the escape "\u%04X" inside a double-quoted string`, r), true
		}
		i += size
	}
	return 0, 0, "", "", false
}

// parserError reports whether a yaml.v3 message comes from its parser
// rather than its scanner.
func parserError(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// mistakeLine finds the line of a parser error. For those, yaml.v3 gives
// the 0-based line of the collection that holds the mistake, which may be
// far above it; the mistake is on the first line at which the file, cut
// there, fails with the same error. A file cut before the mistake parses
// (or fails otherwise), so a binary search finds that line.
func mistakeLine(lines []string, reported int, full string) int {
	fails := func(n int) bool {
		var doc yaml.Node
		err := safeDecode(yaml.NewDecoder(strings.NewReader(strings.Join(lines[:n], ""))), &doc)
		return err != nil && err.Error() == full
	}
	lo, hi := reported+1, len(lines)
	if lo > hi || !fails(hi) {
		return reported + 1
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
