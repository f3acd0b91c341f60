package poller

import (
	"bytes"
	"fmt"
)

// pageBody is a response body as read: decoded, or, on the fast path, with
// its items left as JSON text.
type pageBody struct {
	x    *Extractor
	fast bool
	// body is the JSON value of the body, on the fast path.
	body []byte
	// raw are the JSON texts of the items, on the fast path.
	raw [][]byte
	// doc is the decoded body (on the fast path, once next needed it),
	// and items its items.
	doc   any
	items []any
}

// readPage reads a response body and its items: by the fast path where the
// resource and the body allow it, else decoded. The errors are Decode's
// and Items'.
func (x *Extractor) readPage(body []byte) (*pageBody, error) {
	if x.fast {
		if pb, ok := x.rawPage(body); ok {
			return pb, nil
		}
	}
	return x.decodedPage(body)
}

// decodedPage reads a response body and its items decoded.
func (x *Extractor) decodedPage(body []byte) (*pageBody, error) {
	doc, err := x.Decode(body)
	if err != nil {
		return nil, err
	}
	items, err := x.Items(doc)
	if err != nil {
		return nil, err
	}
	return &pageBody{x: x, doc: doc, items: items}, nil
}

// rawPage reads body by the fast path; ok is false where it leaves the
// body to Decode and Items: not valid JSON, or no array (or null) at the
// items path.
func (x *Extractor) rawPage(body []byte) (_ *pageBody, ok bool) {
	b := bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	b = b[skipSpace(b, 0):]
	end := skipValue(b, 0, 0)
	if end < 0 || skipSpace(b, end) != len(b) {
		return nil, false
	}
	b = b[:end]
	v, found, ok := rawWalk(b, x.items.path)
	if !ok || !found {
		return nil, false
	}
	pb := &pageBody{x: x, fast: true, body: b}
	switch v[0] {
	case 'n':
		return pb, true
	case '[':
	default:
		return nil, false
	}
	i := skipSpace(v, 1)
	if v[i] == ']' {
		return pb, true
	}
	for {
		end := skipValue(v, i, 1)
		pb.raw = append(pb.raw, v[i:end])
		var closed bool
		if i, closed = nextMember(v, end, ']'); closed || i < 0 {
			return pb, i >= 0
		}
	}
}

// count is the number of items, before the filter: what pagination
// counts.
func (pb *pageBody) count() int {
	if pb.fast {
		return len(pb.raw)
	}
	return len(pb.items)
}

// identity is item i's canonical JSON: equal for the same record in the
// same version, whatever the order of its keys or the path that read it.
func (pb *pageBody) identity(i int) string {
	if pb.fast {
		var c canonicalizer
		if _, ok := c.record(pb.raw[i]); ok {
			return string(c.out)
		}
		item, err := pb.x.Decode(pb.raw[i])
		if err != nil { // a checked item always decodes; if not, match nothing
			return fmt.Sprintf("undecodable %p", &pb.raw[i])
		}
		return identity(item)
	}
	return identity(pb.items[i])
}

// next reads the next cursor or next URL of the body (see Extractor.next).
func (pb *pageBody) next() (string, error) {
	if pb.fast && pb.doc == nil {
		if g := pb.x.nextGetter(); g == nil {
			return "", nil
		} else if v, found, ok := rawWalk(pb.body, g.path); ok {
			var s any
			if found {
				s, ok = rawScalar(v)
			}
			if ok {
				return nextText(g, s)
			}
		}
		doc, err := pb.x.Decode(pb.body)
		if err != nil {
			return "", err
		}
		pb.doc = doc
	}
	return pb.x.next(pb.doc)
}

// records turns the items from the from-th on into Records, as RecordsOf
// does (a Skip's Index counts from the from-th).
func (pb *pageBody) records(from int) ([]Record, []Skip, error) {
	if !pb.fast {
		return pb.x.RecordsOf(pb.items[from:])
	}
	raw := pb.raw[from:]
	recs := make([]Record, 0, len(raw))
	var skips []Skip
	var c canonicalizer
	for i, item := range raw {
		rec, reason, ok := pb.x.rawRecord(&c, item)
		if !ok {
			v, err := pb.x.Decode(item)
			if err != nil {
				return nil, nil, fmt.Errorf("record %d: %w", i, err)
			}
			rec, c.out, reason = pb.x.record(v, c.out[:0])
		}
		if reason != "" {
			skips = append(skips, Skip{Index: i, ID: rec.ID, Reason: reason})
			continue
		}
		recs = append(recs, rec)
	}
	return recs, skips, nil
}

// rawRecord builds the Record of item, the JSON text of one, by the fast
// path: what record builds of it decoded. ok is false where the fast path
// leaves it to record.
func (x *Extractor) rawRecord(c *canonicalizer, item []byte) (rec Record, reason string, ok bool) {
	top, ok := c.record(item)
	if !ok || item[0] != '{' {
		return rec, "", false
	}
	rec, reason = x.head(func(g *getter) (any, error) {
		v, found := field(top, g)
		if !found {
			ok = false
			return nil, errLeftToDecode
		}
		return v, nil
	})
	if !ok {
		return rec, "", false
	}
	if reason != "" {
		return rec, reason, true
	}
	rec.Data = bytes.Clone(c.out)
	rec.Hash = hashHex(c.out)
	return rec, "", true
}
