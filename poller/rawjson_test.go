package poller

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fastExtractors are the fuzz resources that the fast path reads.
func fastExtractors(t testing.TB) []*Extractor {
	t.Helper()
	var xs []*Extractor
	for _, x := range fuzzExtractors(t) {
		if x.fast {
			xs = append(xs, x)
		}
	}
	if len(xs) != 3 {
		t.Fatalf("%d fuzz resources read by the fast path, want 3 (dotted, whole, cursor)", len(xs))
	}
	return xs
}

// sameAsDecoded checks that the fast path, where it reads body, reads it
// as the decoded path does: the same items, identities, next page, and
// records (id, dates, data, hash) and skips. It reports how many of the
// records the fast path read itself.
func sameAsDecoded(t *testing.T, x *Extractor, body []byte) (fast int) {
	t.Helper()
	pb, ok := x.rawPage(body)
	want, err := x.decodedPage(body)
	if !ok {
		return 0
	}
	if err != nil {
		t.Fatalf("the fast path reads %q, which the decoded path refuses: %v", body, err)
	}
	if pb.count() != want.count() {
		t.Fatalf("body %q: %d items, %d decoded", body, pb.count(), want.count())
	}
	for i := range pb.count() {
		if got, want := pb.identity(i), want.identity(i); got != want {
			t.Errorf("body %q: item %d identity %q, decoded %q", body, i, got, want)
		}
	}
	gotNext, gotErr := pb.next()
	wantNext, wantErr := want.next()
	if gotNext != wantNext || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Errorf("body %q: next %q (%v), decoded %q (%v)", body, gotNext, gotErr, wantNext, wantErr)
	}
	var c canonicalizer
	for _, item := range pb.raw {
		if _, _, ok := x.rawRecord(&c, item); ok {
			fast++
		}
	}
	for from := range min(pb.count(), 2) + 1 {
		recs, skips, err := pb.records(from)
		wrecs, wskips, werr := want.records(from)
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("body %q: records error %v, decoded %v", body, err, werr)
		}
		if !slices.EqualFunc(recs, wrecs, func(a, b Record) bool {
			return a.ID == b.ID && a.Updated.Equal(b.Updated) && a.Created.Equal(b.Created) && string(a.Data) == string(b.Data) && a.Hash == b.Hash
		}) {
			t.Errorf("body %q from %d:\nfast    %+v\ndecoded %+v", body, from, recs, wrecs)
		}
		if !slices.Equal(skips, wskips) {
			t.Errorf("body %q from %d: skips %+v, decoded %+v", body, from, skips, wskips)
		}
	}
	return fast
}

func TestFastPathAsDecoded(t *testing.T) {
	xs := fastExtractors(t)
	for _, tt := range []struct {
		body string
		fast int // records the fast path reads itself, for xs[0] (items .items, id, updated)
	}{
		{`{"items":[{"id":1,"updated":"2026-11-22T10:04:05Z","name":"Ada"},{"updated":"2026-11-22T10:04:05.123+02:00","id":"x-2"}]}`, 2},
		// Keys out of order, nested, spaces, numbers as written.
		{"\ufeff { \"items\" : [ {\"z\": [1, 2.50, -0e+7, {\"b\":true,\"a\":null}], \"id\" : 12345678901234567890 , \"updated\":\"2026-11-22T10:04:05Z\", \"a\":{}, \"b\":[]} ] }\r\n", 1},
		// Escapes, non-ASCII, U+2028, an escaped key, HTML.
		{`{"items":[{"id":"\u0041\/b","updated":"2026-11-22T10:04:05Z","s":"caf\u00e9 \ud83d\ude00 \ud800 \"q\" \\ \t <&>","n":"é  ","k\u00e9y":1,"ké":2}]}`, 1},
		// Invalid UTF-8.
		{"{\"items\":[{\"id\":1,\"updated\":\"2026-11-22T10:04:05Z\",\"s\":\"a\xffb\",\"\xfe\":1}]}", 1},
		// Integral ids written otherwise, a number date, an id that is not one.
		{`{"items":[{"id":1.5e3,"updated":"2026-11-22T10:04:05Z"},{"id":12.0,"updated":1},{"id":true,"updated":"2026-11-22T10:04:05Z"},{"id":"","updated":"x"}]}`, 4},
		// Skips: no id, a null id, no date, a bad date, an empty date.
		{`{"items":[{"name":"x"},{"id":null},{"id":3},{"id":4,"updated":"tomorrow"},{"id":5,"updated":" "}]}`, 5},
		// Left to the decoded path: a duplicate key, an object id, an item
		// that is not an object.
		{`{"items":[{"id":1,"id":2,"updated":"2026-11-22T10:04:05Z"},{"id":{"x":1},"updated":"2026-11-22T10:04:05Z"},1,"a",null,[]]}`, 0},
		{`{"items":[{"id":1,"updated":"2026-11-22T10:04:05Z","a":{"b":1,"b":2}}]}`, 0},
		{`{"items":null}`, 0},
		{`{"items":[]}`, 0},
		{`{"items":[],"items":[{"id":1,"updated":"2026-11-22T10:04:05Z"}]}`, 1},
	} {
		for i, x := range xs {
			fast := sameAsDecoded(t, x, []byte(tt.body))
			if i == 0 && fast != tt.fast {
				t.Errorf("body %s: the fast path read %d records itself, want %d", tt.body, fast, tt.fast)
			}
		}
	}
	for _, body := range []string{
		`{"items":[1,`, `{"items":[1]}x`, `<html>`, ``, `{"items":3}`, `{"other":[]}`, `{"items":[01]}`, `{"items":["a` + "\x01" + `"]}`,
		`{"items":[1.]}`, `{"items":[-]}`, `{"items":[tru]}`, `{"items":["\x"]}`, `{"items":["\u12"]}`, "{\"items\":[]}\f",
		strings.Repeat("[", 300) + strings.Repeat("]", 300),
	} {
		if _, ok := xs[0].rawPage([]byte(body)); ok {
			t.Errorf("the fast path reads %q; want it left to the decoded path", body)
		}
	}
}

func TestFastPathNextCursor(t *testing.T) {
	x := fastExtractors(t)[2] // cursor: next_cursor .paging.next.after
	for _, body := range []string{
		`{"results":[{"properties":{"hs_object_id":"51"}}],"paging":{"next":{"after":"51"}}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":{"next":{"after":5.1e1}}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":{"next":{"after":null}}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":{"next":{"after":false}}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":{"next":{"after":true}}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":{"next":{"after":{"x":1}}}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":{"next":"x"}}`,
		`{"results":[{"properties":{"hs_object_id":51}}],"paging":null}`,
		`{"results":[{"properties":{"hs_object_id":51}}]}`,
	} {
		if _, ok := x.rawPage([]byte(body)); !ok {
			t.Errorf("the fast path leaves %s to the decoded path", body)
		}
		sameAsDecoded(t, x, []byte(body))
	}
}

// TestCanonicalRaw checks the fast path's canonical JSON against
// appendCanonical's on values of every kind.
func TestCanonicalRaw(t *testing.T) {
	for _, v := range []string{
		`{"b":1,"a":[true,false,null,-1.5E+10,"x"],"c":{"é":1,"e":2,"E":3,"":4}}`,
		`"\u2028\u2029 \b\f\n\r\t\u0000\u001f\u007f \ud834\udd1e \udd1e\ud834"`,
		`["\u00e9", "é", "\/", "a\u0022b"]`,
		"\"\xe2\x80\xa8 \xed\xa0\x80 \xc0\xaf\"",
		`[[[[{}]]],{"a":[{}]}]`,
	} {
		var c canonicalizer
		if _, ok := c.record([]byte(v)); !ok {
			t.Errorf("the fast path leaves %s to the decoded path", v)
			continue
		}
		x := &Extractor{}
		decoded, err := x.Decode([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := appendCanonical(nil, decoded)
		if string(c.out) != string(want) {
			t.Errorf("%s: fast path %s, appendCanonical %s", v, c.out, want)
		}
	}
}

// FuzzRawRecords checks that the fast path reads arbitrary bodies as the
// decoded path does, and that it accepts as JSON exactly what
// encoding/json does (but for nesting deeper than it follows).
func FuzzRawRecords(f *testing.F) {
	xs := fastExtractors(f)
	for i, body := range []string{
		`{"items":[{"id":1,"updated":"2026-11-22T10:04:05Z","name":"Ada"},{"id":"x-2","updated":"2026-11-22T10:04:05.123+02:00"}]}`,
		`[{"id":12345678901234567890,"ts":1763805845123},{"id":1.5e3,"ts":"1763805845123","z":{"b":[1,{"d":2,"c":3}],"a":"\u00e9\/"}}]`,
		`{"results":[{"properties":{"hs_object_id":"51"}}],"paging":{"next":{"after":"51"}}}`,
		`{"items":[{"id":"\ud83d\ude00","updated":"2026-11-22T10:04:05Z","k\u0000":"\u2028","a":1,"a":2}]}`,
		"\xef\xbb\xbf {\"items\":[{\"id\":1,\"updated\":\"2026-11-22T10:04:05Z\",\"s\":\"\xff\"}]} \n",
		`{"items":[1,"a",null,[],{"id":[1]}]}`, `{"items":null}`, `null`, `{"items":[`,
	} {
		f.Add([]byte(body), uint8(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		x := xs[int(which)%len(xs)]
		sameAsDecoded(t, x, body)
		d := body[skipSpace(body, 0):]
		end := skipValue(d, 0, 0)
		accepted := end >= 0 && skipSpace(d, end) == len(d)
		deep := strings.Count(string(body), "[")+strings.Count(string(body), "{") >= maxRawDepth
		if accepted != json.Valid(d) && !(deep && !accepted) {
			t.Fatalf("the fast path takes %q for JSON: %v; encoding/json: %v", d, accepted, json.Valid(d))
		}
		if accepted {
			var c canonicalizer
			if _, ok := c.record(d[:end]); ok {
				v, err := (&Extractor{}).Decode(d)
				if err != nil {
					t.Fatalf("decode %q: %v", d, err)
				}
				want, err := appendCanonical(nil, v)
				if err != nil || string(want) != string(c.out) {
					t.Fatalf("%q: fast path %q, appendCanonical %q (%v)", d, c.out, want, err)
				}
			}
		}
	})
}

// BenchmarkReadPage reads a page of 1,000 Keap-like contacts into records,
// as BenchmarkFullScan's cycles do: by the fast path, and decoded (as
// before it, and as a resource with a transform or a jq path still is).
func BenchmarkReadPage(b *testing.B) {
	api := &benchAPI{n: benchPageSize}
	body := api.page(0, benchPageSize)
	res, _ := benchResource(b, "https://api.example.com")
	x, err := NewExtractor(res)
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []struct {
		name string
		read func([]byte) (*pageBody, error)
	}{{"fast", x.readPage}, {"decoded", x.decodedPage}} {
		b.Run(path.name, func(b *testing.B) {
			for b.Loop() {
				pb, err := path.read(body)
				if err != nil {
					b.Fatal(err)
				}
				recs, skips, err := pb.records(0)
				if err != nil || len(recs) != benchPageSize || len(skips) > 0 {
					b.Fatalf("%d records, %d skips, %v", len(recs), len(skips), err)
				}
			}
			b.ReportMetric(float64(b.N*benchPageSize)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
