package poller

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/pollhook/pollhook/config"
)

// fuzzExtractConfig holds the resources FuzzExtract reads bodies with:
// dotted paths and rfc3339 dates; jq items, a filter and Java dates in a
// zone; the whole body as the items with epoch dates; cursor paging; a
// transform with ignored dotted paths; watched jq paths.
const fuzzExtractConfig = `sources:
  - name: api
    base_url: https://api.example.com
resources:
  - name: dotted
    object: item
    url: /items
    items: .items
    id_field: id
    dates: { updated_field: updated, updated_format: rfc3339 }
  - name: jq
    object: item
    url: /items
    items: '.data | map(.attributes)'
    filter: '.archived != true'
    id_field: '.key // .id'
    dates:
      updated_field: meta.modified
      updated_format: "MM/dd/yyyy HH:mm:ss"
      updated_timezone: America/New_York
      created_field: created
      created_format: "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
  - name: whole
    object: item
    url: /items
    items: .
    dates: { updated_field: ts, updated_format: unix_ms }
  - name: cursor
    object: item
    url: /items
    items: .results
    id_field: properties.hs_object_id
    pagination: { type: cursor, next_cursor: .paging.next.after }
  - name: ignoring
    object: item
    url: /items
    items: .items
    transform: 'del(.secret) | .n = ((.n // 0) | tonumber? // 0) * 1.5'
    ignore_fields: [views, meta.seen, updated]
    dates: { updated_field: updated, updated_format: rfc3339 }
  - name: watching
    object: item
    url: /items
    items: .items
    watch_fields: [".tags[].name", stage, ".a.b"]
`

// fuzzExtractors are the Extractors of the resources of fuzzExtractConfig.
func fuzzExtractors(t testing.TB) []*Extractor {
	t.Helper()
	cfg, err := config.Parse("fuzz.yaml", []byte(fuzzExtractConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var xs []*Extractor
	for i := range cfg.Resources {
		x, err := NewExtractor(&cfg.Resources[i])
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	return xs
}

// FuzzExtract decodes arbitrary bodies and extracts their records as each
// fuzz resource configures: nothing may panic; valid JSON always decodes;
// every record has an id, canonical JSON data (decoding and writing it
// again gives the same bytes) and the hash of that data (of the fields
// compared, where fields are ignored or watched: the same hash as its
// data gets when read back as kept content); every skip says why; and
// extraction is deterministic.
func FuzzExtract(f *testing.F) {
	xs := fuzzExtractors(f)
	for i, body := range []string{
		`{"items":[{"id":1,"updated":"2026-11-22T10:04:05Z","name":"Ada"},{"id":"x-2","updated":"2026-11-22T10:04:05.123+02:00"}]}`,
		`{"data":[{"attributes":{"id":7,"meta":{"modified":"11/22/2026 10:04:05"},"created":"2026-11-22T10:04:05.000-0500"}},{"attributes":{"key":"k","archived":true}}]}`,
		`[{"id":12345678901234567890,"ts":1763805845123},{"id":1.5e3,"ts":"1763805845123"}]`,
		`{"results":[{"properties":{"hs_object_id":"51"}}],"paging":{"next":{"after":"51"}}}`,
		`{"items":null}`, `null`, `{"items":[1,"a",null,[]]}`, "\xef\xbb\xbf{\"items\":[]}", `<html></html>`, `{"items":[`,
		`{"items":[{"id":1,"updated":"2026-11-22T10:04:05Z","views":3,"meta":{"seen":1,"src":"x"},"n":"2","secret":"s"},{"id":2,"updated":"2026-11-22T10:04:05Z","meta":"flat","n":1e400}]}`,
		`{"items":[{"id":1,"stage":2,"tags":[{"name":"a","at":1},{"name":"b"}],"a":{"b":[1.0,2]}},{"id":2,"tags":"none","a":3}]}`,
	} {
		f.Add([]byte(body), uint8(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		x := xs[int(which)%len(xs)]
		doc, err := x.Decode(body)
		if err != nil {
			if json.Valid(body) {
				t.Fatalf("Decode rejects valid JSON %q: %v", body, err)
			}
			return
		}
		items, err := x.Items(doc)
		if err != nil {
			return
		}
		recs, skips, err := x.RecordsOf(items)
		if err != nil {
			return
		}
		if len(recs)+len(skips) > len(items) {
			t.Fatalf("%d records and %d skips from %d items", len(recs), len(skips), len(items))
		}
		for _, r := range recs {
			if r.ID == "" {
				t.Errorf("record without id: %s", r.Data)
			}
			sum := sha256.Sum256(r.Data)
			if x.project == nil && r.Hash != hex.EncodeToString(sum[:16]) {
				t.Errorf("record %s: hash %s is not that of its data", r.ID, r.Hash)
			}
			if h, err := x.ContentHash(string(r.Data)); err != nil || h != r.Hash {
				t.Errorf("record %s: hash %s at extraction, %s (%v) from its data %s kept", r.ID, r.Hash, h, err, r.Data)
			}
			dec := json.NewDecoder(bytes.NewReader(r.Data))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("record %s: data %q is not JSON: %v", r.ID, r.Data, err)
			}
			again, err := appendCanonical(nil, v)
			if err != nil || !bytes.Equal(again, r.Data) {
				t.Errorf("record %s: data %q written again is %q (%v)", r.ID, r.Data, again, err)
			}
		}
		for _, s := range skips {
			if s.Reason == "" || s.Index < 0 || s.Index >= len(items) {
				t.Errorf("skip %+v of %d items", s, len(items))
			}
		}
		recs2, skips2, _ := x.RecordsOf(items)
		if len(recs2) != len(recs) || len(skips2) != len(skips) {
			t.Fatalf("a second extraction gave %d records and %d skips, the first %d and %d", len(recs2), len(skips2), len(recs), len(skips))
		}
		for i := range recs {
			if recs[i].ID != recs2[i].ID || recs[i].Hash != recs2[i].Hash || !recs[i].Updated.Equal(recs2[i].Updated) {
				t.Errorf("record %d differs between two extractions: %+v, %+v", i, recs[i], recs2[i])
			}
		}
	})
}
