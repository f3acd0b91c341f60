package poller

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// A record's history: what its transform makes of it, which of its fields
// a change is judged on (ignore_fields, watch_fields), and what an update
// reports of the version before it (previous, changed_fields).

// compileTransform compiles a resource's transform; nil when it has none.
func compileTransform(r *config.Resource) (*gojq.Code, error) {
	t := strings.TrimSpace(r.Transform)
	if t == "" {
		return nil, nil
	}
	q, err := gojq.Parse(t)
	if err != nil {
		return nil, fmt.Errorf("resources[%s].transform %q: %w", r.Name, t, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("resources[%s].transform %q: %w", r.Name, t, err)
	}
	return code, nil
}

// transformed runs the transform on one record: its one output is the
// record from then on. A non-empty reason skips the record.
func (x *Extractor) transformed(item any) (any, string) {
	iter := x.transform.Run(item)
	out, ok := iter.Next()
	if !ok {
		return nil, "transform gave no value, want one record"
	}
	if err, isErr := out.(error); isErr {
		return nil, "transform: " + jqError(err).Error()
	}
	if extra, more := iter.Next(); more {
		if err, isErr := extra.(error); isErr {
			return nil, "transform: " + jqError(err).Error()
		}
		return nil, "transform gave more than one value, want one record"
	}
	return out, ""
}

// projector takes out of a record what a change is judged on: the record
// without its ignore_fields (and without its updated date, which moves
// with any change, ignored ones included), or only its watch_fields.
// Paths that are dotted or plain jq key paths (.a.b) are followed in Go;
// any other jq path expression makes the whole projection a jq program.
// A path that does not fit a record (a key under a string) takes nothing
// out of it, or puts nothing in.
type projector struct {
	watch bool
	paths [][]string // each a path of keys, when code is nil
	code  *gojq.Code
}

// newProjector returns the projector of r; nil when r compares whole
// records.
func newProjector(r *config.Resource) (*projector, error) {
	exprs, key := r.IgnoreFields, "ignore_fields"
	p := &projector{}
	if len(r.WatchFields) > 0 {
		exprs, key, p.watch = r.WatchFields, "watch_fields", true
	}
	if len(exprs) == 0 {
		return nil, nil
	}
	exprs = slices.Clone(exprs)
	if !p.watch && r.Dates.Updated != nil {
		exprs = append(exprs, r.Dates.Updated.Field)
	}
	var jqPaths []string
	native := true
	for _, e := range exprs {
		segs, ok := keyPath(e)
		if !ok {
			native = false
		}
		p.paths = append(p.paths, segs)
		jqPaths = append(jqPaths, jqPathOf(e, segs, ok))
	}
	if native {
		return p, nil
	}
	p.paths = nil
	tries := make([]string, len(jqPaths))
	for i, e := range jqPaths {
		tries[i] = "(try path(" + e + "))"
	}
	src := "delpaths([" + strings.Join(tries, ", ") + "])"
	if p.watch {
		src = ". as $r | reduce (" + strings.Join(tries, ", ") + ") as $p (null; setpath($p; $r | getpath($p)))"
	}
	q, err := gojq.Parse(src)
	if err == nil {
		p.code, err = gojq.Compile(q)
	}
	if err != nil {
		return nil, fmt.Errorf("resources[%s].%s: %w", r.Name, key, err)
	}
	return p, nil
}

// keyPath reads a path of keys: a dotted path (stats.views, any key
// text), or jq's own .a.b of identifiers; ok is false for any other jq.
func keyPath(expr string) ([]string, bool) {
	if strings.HasPrefix(expr, ".") {
		return parsePath(expr)
	}
	return strings.Split(expr, "."), true
}

// jqPathOf writes a path as jq: a path of keys as .["a"]["b"].
func jqPathOf(expr string, segs []string, isKeys bool) string {
	if !isKeys {
		return expr
	}
	if len(segs) == 0 {
		return "."
	}
	var b strings.Builder
	b.WriteString(".")
	for _, s := range segs {
		k, _ := json.Marshal(s)
		b.WriteString("[")
		b.Write(k)
		b.WriteString("]")
	}
	return b.String()
}

// apply returns the part of v a change is judged on. v is not modified.
func (p *projector) apply(v any) (any, error) {
	if p.code != nil {
		out, ok := p.code.Run(v).Next()
		if !ok {
			return nil, nil
		}
		if err, isErr := out.(error); isErr {
			return nil, jqError(err)
		}
		return out, nil
	}
	if p.watch {
		var out map[string]any
		for _, path := range p.paths {
			val, _, err := walk(v, path)
			if err != nil {
				continue
			}
			if out == nil {
				out = map[string]any{}
			}
			setKeys(out, path, val)
		}
		if out == nil {
			return nil, nil
		}
		return out, nil
	}
	for _, path := range p.paths {
		v = without(v, path)
	}
	return v, nil
}

// setKeys sets the value at path in m, making the objects on the way.
func setKeys(m map[string]any, path []string, val any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = val
}

// without returns v without the key at path, copying the objects on the
// way rather than changing them; v itself when it holds no such key.
func without(v any, path []string) any {
	m, ok := v.(map[string]any)
	if !ok || len(path) == 0 {
		return v
	}
	child, ok := m[path[0]]
	if !ok {
		return v
	}
	c := maps.Clone(m)
	if len(path) == 1 {
		delete(c, path[0])
	} else {
		c[path[0]] = without(child, path[1:])
	}
	return c
}

// hashOf is the Hash of a record that is v (decoded) and data (v as
// canonical JSON): of data itself, or of what the projector keeps.
func (x *Extractor) hashOf(v any, data []byte, buf []byte) (string, []byte, error) {
	if x.project == nil {
		return hashHex(data), buf, nil
	}
	kept, err := x.project.apply(v)
	if err != nil {
		return "", buf, err
	}
	buf, err = appendCanonical(buf[:0], kept)
	if err != nil {
		return "", buf, err
	}
	return hashHex(buf), buf, nil
}

// ContentHash is the Hash a record whose content (canonical JSON, after
// the transform, as the store keeps it) is content would have today: it
// tells a stored version whose hash was made by other rules (fields
// ignored since) from a real change.
func (x *Extractor) ContentHash(content string) (string, error) {
	if x.project == nil {
		return hashHex([]byte(content)), nil
	}
	dec := json.NewDecoder(strings.NewReader(content))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("decode stored content: %w", err)
	}
	h, _, err := x.hashOf(v, nil, nil)
	return h, err
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// changedFields returns the top-level keys whose values differ between
// two versions of a record (canonical JSON objects: equal values are
// equal bytes), sorted; a key on one side only counts. It is nil when
// either is not an object.
func changedFields(previous, current []byte) []string {
	var a, b map[string]json.RawMessage
	if !isObject(previous) || !isObject(current) ||
		json.Unmarshal(previous, &a) != nil || json.Unmarshal(current, &b) != nil {
		return nil
	}
	out := []string{}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// history is how a differ compares records and what it keeps of them.
type history struct {
	// keep keeps each record's content, for the previous of its next
	// change (keep_content).
	keep bool
	// fields is true when a change is judged on some fields only
	// (ignore_fields or watch_fields): Hash is then of those.
	fields bool
	// contentHash is the Hash a stored content would have today.
	contentHash func(content string) (string, error)
}

// wantsContent lists the records of recs whose stored content the diff
// may need: the known ones whose hash or updated date moved (an update's
// previous, or a hash made by other rules to check). None when no content
// is kept.
func (d *differ) wantsContent(recs []Record, seen map[string]cursor.Seen) []string {
	if !d.keep {
		return nil
	}
	var ids []string
	for i := range recs {
		r := &recs[i]
		prev, ok := seen[r.ID]
		if ok && !prev.Deleted && (r.Hash != prev.Hash || r.Updated.After(prev.Updated)) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// sameContent reports whether r is, in what the resource compares, the
// version the store holds: the same hash, or a stored content that hashes
// as r does under today's rules (its hash was made when other fields
// were ignored).
func (h *history) sameContent(r *Record, prev cursor.Seen) bool {
	if r.Hash == prev.Hash {
		return true
	}
	if prev.Content == "" || h.contentHash == nil {
		return false
	}
	c, err := h.contentHash(prev.Content)
	return err == nil && c == r.Hash
}

// onlyIgnored reports whether r, whose updated date advanced, changed only
// in fields the resource does not compare. Without ignore_fields or
// watch_fields every field is compared, and an advanced date is a change.
func (h *history) onlyIgnored(r *Record, prev cursor.Seen) bool {
	return h.fields && h.sameContent(r, prev)
}

// content is what the store keeps of r: its data, or nothing.
func (h *history) content(r *Record) string {
	if !h.keep {
		return ""
	}
	return string(r.Data)
}

// previous is what an update of a record last stored as prev reports of
// it: the content before, and the top-level fields that differ from data.
// Both are nil when no content is kept.
func (h *history) previous(prev cursor.Seen, data json.RawMessage) (json.RawMessage, []string) {
	if !h.keep || prev.Content == "" {
		return nil, nil
	}
	p := json.RawMessage(prev.Content)
	return p, changedFields(p, data)
}

// stored is what a page writes of a record's version v: with its content
// when fresh, else without (the store keeps the content it has).
func stored(id string, v cursor.Seen, fresh bool) cursor.SeenRecord {
	if !fresh {
		v.Content = ""
	}
	return cursor.SeenRecord{ID: id, Seen: v}
}
