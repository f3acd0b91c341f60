package emit

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

var (
	occurred = time.Date(2026, 11, 22, 10, 4, 5, 123_000_000, time.UTC)
	detected = time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)
)

// event returns a contact event with object id id and type contact.<verb>.
func event(id, verb string) cursor.Event {
	return cursor.Event{
		ID:         "evt_" + id + "_" + verb,
		Type:       "contact." + verb,
		Resource:   "contacts",
		Source:     "keap",
		Object:     "contact",
		ObjectID:   id,
		OccurredAt: occurred,
		DetectedAt: detected,
		Data:       json.RawMessage(fmt.Sprintf(`{"id":%q,"note":"a <b> & c"}`, id)),
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestEncodePollhook(t *testing.T) {
	e1, e2 := event("1", "updated"), event("2", "created")

	one, err := Encode(config.FormatPollhook, []cursor.Event{e1}, false)
	if err != nil {
		t.Fatal(err)
	}
	if one.ContentType != "application/json" || one.ID != e1.ID {
		t.Errorf("content type %q, id %q; want application/json, %q", one.ContentType, one.ID, e1.ID)
	}
	got := decode[map[string]any](t, one.Bytes)
	want := map[string]any{
		"id": e1.ID, "type": "contact.updated", "resource": "contacts", "source": "keap",
		"object": "contact", "object_id": "1",
		"occurred_at": "2026-11-22T10:04:05.123Z", "detected_at": "2026-11-22T10:05:00.000Z",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if data, _ := got["data"].(map[string]any); data["id"] != "1" {
		t.Errorf("data = %v, want the record", got["data"])
	}
	if !strings.Contains(string(one.Bytes), `"a <b> & c"`) {
		t.Errorf("record bytes changed: %s", one.Bytes)
	}

	// A batching destination gets an array, even of one.
	for _, events := range [][]cursor.Event{{e1}, {e1, e2}} {
		b, err := Encode(config.FormatPollhook, events, true)
		if err != nil {
			t.Fatal(err)
		}
		arr := decode[[]Envelope](t, b.Bytes)
		if len(arr) != len(events) {
			t.Fatalf("batch of %d: got %d envelopes", len(events), len(arr))
		}
		for i, env := range arr {
			if env.ID != events[i].ID || env.ObjectID != events[i].ObjectID {
				t.Errorf("envelope %d = %+v, want event %s", i, env, events[i].ID)
			}
		}
	}

	if _, err := Encode(config.FormatPollhook, []cursor.Event{e1, e2}, false); err == nil {
		t.Error("two events in an unbatched body: no error")
	}
}

func TestEncodeNullData(t *testing.T) {
	e := event("1", "deleted")
	e.Data = nil
	b, err := Encode(config.FormatPollhook, []cursor.Event{e}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode[map[string]json.RawMessage](t, b.Bytes); string(got["data"]) != "null" {
		t.Errorf("data = %s, want null", got["data"])
	}
}

var ceAttrName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

func TestEncodeCloudEvents(t *testing.T) {
	e1, e2 := event("1", "updated"), event("2", "deleted")
	e2.Data = json.RawMessage("null")

	one, err := Encode(config.FormatCloudEvents, []cursor.Event{e1}, false)
	if err != nil {
		t.Fatal(err)
	}
	if one.ContentType != "application/cloudevents+json" {
		t.Errorf("content type %q", one.ContentType)
	}
	got := decode[map[string]any](t, one.Bytes)
	want := map[string]any{
		"specversion": "1.0", "id": e1.ID, "source": "/pollhook/keap/contacts",
		"type": "contact.updated", "subject": "1", "time": "2026-11-22T10:04:05.123Z",
		"datacontenttype":  "application/json",
		"pollhookresource": "contacts", "detectedat": "2026-11-22T10:05:00.000Z",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if data, _ := got["data"].(map[string]any); data["id"] != "1" {
		t.Errorf("data = %v, want the record", got["data"])
	}
	for k := range got {
		if !ceAttrName.MatchString(k) {
			t.Errorf("attribute %q breaks the CloudEvents naming rule", k)
		}
	}

	batch, err := Encode(config.FormatCloudEvents, []cursor.Event{e1, e2}, true)
	if err != nil {
		t.Fatal(err)
	}
	if batch.ContentType != "application/cloudevents-batch+json" {
		t.Errorf("batch content type %q", batch.ContentType)
	}
	arr := decode[[]map[string]any](t, batch.Bytes)
	if len(arr) != 2 || arr[0]["id"] != e1.ID || arr[1]["id"] != e2.ID {
		t.Fatalf("batch = %v", arr)
	}
	if _, ok := arr[1]["data"]; ok {
		t.Errorf("a delete with no record carries data: %v", arr[1]["data"])
	}
}

func TestCloudEventSourceEscapes(t *testing.T) {
	if got := CloudEventSource("my api", "a/b"); got != "/pollhook/my%20api/a%2Fb" {
		t.Errorf("source = %q", got)
	}
}

func TestEncodeKeap(t *testing.T) {
	tests := []struct {
		objectID string
		want     any // as decoded by encoding/json
	}{
		{"123", float64(123)},
		{"0", float64(0)},
		{"0012", "0012"},
		{"abc-1", "abc-1"},
		{"-5", "-5"},
		{"9223372036854775807", float64(9223372036854775807)}, // the largest int64: a number
		{"9223372036854775808", "9223372036854775808"},        // one more: a string, whole
		{"99999999999999999999", "99999999999999999999"},
		{"", ""},
	}
	for _, tt := range tests {
		e := event(tt.objectID, "add")
		b, err := Encode(config.FormatKeap, []cursor.Event{e}, false)
		if err != nil {
			t.Fatal(err)
		}
		got := decode[map[string]any](t, b.Bytes)
		if got["event_key"] != "contact.add" || got["object_type"] != "contact" {
			t.Errorf("event_key %v, object_type %v", got["event_key"], got["object_type"])
		}
		keys, _ := got["object_keys"].([]any)
		if len(keys) != 1 {
			t.Fatalf("object_keys = %v", got["object_keys"])
		}
		k := keys[0].(map[string]any)
		if k["id"] != tt.want {
			t.Errorf("id %q encoded as %#v, want %#v", tt.objectID, k["id"], tt.want)
		}
		if k["apiUrl"] != "" || k["timestamp"] != "2026-11-22T10:04:05.123Z" {
			t.Errorf("apiUrl %v, timestamp %v", k["apiUrl"], k["timestamp"])
		}
	}
}

func TestEncodeKeapLimits(t *testing.T) {
	if _, err := Encode(config.FormatKeap, []cursor.Event{event("1", "add"), event("2", "edit")}, true); err == nil ||
		!strings.Contains(err.Error(), "contact.add and contact.edit") {
		t.Errorf("mixed types: err = %v, want one naming both types", err)
	}
	many := make([]cursor.Event, KeapMaxKeys+1)
	for i := range many {
		many[i] = event(fmt.Sprint(i+1), "add")
	}
	b, err := Encode(config.FormatKeap, many[:KeapMaxKeys], true)
	if err != nil {
		t.Fatalf("%d keys: %v", KeapMaxKeys, err)
	}
	if got := decode[KeapBody](t, b.Bytes); len(got.ObjectKeys) != KeapMaxKeys {
		t.Errorf("got %d keys", len(got.ObjectKeys))
	}
	if _, err := Encode(config.FormatKeap, many, true); err == nil {
		t.Errorf("%d keys: no error", len(many))
	}
}

func TestEncodeCloudElements(t *testing.T) {
	e1, e2 := event("1", "created"), event("2", "deleted")
	e2.Data = nil
	b, err := Encode(config.FormatCloudElements, []cursor.Event{e1, e2}, true)
	if err != nil {
		t.Fatal(err)
	}
	if b.ContentType != "application/json" {
		t.Errorf("content type %q", b.ContentType)
	}
	type notification struct {
		EventID    string                       `json:"eventId"`
		ElementKey string                       `json:"elementKey"`
		Events     []map[string]any             `json:"events"`
		Raw        map[string][]json.RawMessage `json:"raw"`
	}
	got := decode[notification](t, b.Bytes)
	if got.EventID != b.ID || !strings.HasPrefix(got.EventID, "bat_") || got.ElementKey != "keap" {
		t.Errorf("eventId %q (body id %q), elementKey %q", got.EventID, b.ID, got.ElementKey)
	}
	if len(got.Events) != 2 {
		t.Fatalf("events = %v", got.Events)
	}
	want := map[string]any{
		"id": e1.ID, "elementKey": "keap", "objectType": "contacts", "objectId": "1",
		"eventType": "CREATED", "eventDate": "2026-11-22T10:04:05.123Z",
	}
	for k, v := range want {
		if got.Events[0][k] != v {
			t.Errorf("events[0].%s = %v, want %v", k, got.Events[0][k], v)
		}
	}
	if got.Events[1]["eventType"] != "DELETED" {
		t.Errorf("events[1].eventType = %v", got.Events[1]["eventType"])
	}
	raw := got.Raw["contacts"]
	if len(raw) != 2 || !strings.Contains(string(raw[0]), `"id":"1"`) || string(raw[1]) != "null" {
		t.Errorf("raw = %s", raw)
	}

	// One event, unbatched: the same shape, with the event id.
	one, err := Encode(config.FormatCloudElements, []cursor.Event{e1}, false)
	if err != nil {
		t.Fatal(err)
	}
	n := decode[CloudElementsNotification](t, one.Bytes)
	if n.EventID != e1.ID || len(n.Events) != 1 || len(n.Raw["contacts"]) != 1 {
		t.Errorf("single notification = %+v", n)
	}

	// Events of two sources: no common elementKey.
	e3 := event("3", "updated")
	e3.Source = "other"
	mixed, err := Encode(config.FormatCloudElements, []cursor.Event{e1, e3}, true)
	if err != nil {
		t.Fatal(err)
	}
	if m := decode[map[string]any](t, mixed.Bytes); m["elementKey"] != nil {
		t.Errorf("mixed sources: elementKey = %v", m["elementKey"])
	}
}

func TestCloudElementsEventType(t *testing.T) {
	tests := map[string]string{
		"contact.created": "CREATED", "contact.add": "CREATED",
		"contact.updated": "UPDATED", "contact.edit": "UPDATED",
		"contact.deleted": "DELETED", "contact.delete": "DELETED",
		"contactGroup.applied": "UNKNOWN", "created": "CREATED",
	}
	for in, want := range tests {
		if got := CloudElementsEventType(in); got != want {
			t.Errorf("CloudElementsEventType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBatchID(t *testing.T) {
	a, b, c := event("1", "updated"), event("2", "updated"), event("3", "updated")
	id := BatchID([]cursor.Event{a, b})
	if !strings.HasPrefix(id, "bat_") || len(id) != len("bat_")+32 {
		t.Errorf("batch id %q", id)
	}
	if again := BatchID([]cursor.Event{a, b}); again != id {
		t.Errorf("same events: %q then %q", id, again)
	}
	if swapped := BatchID([]cursor.Event{b, a}); swapped != id {
		t.Errorf("same events in another order: %q, want %q", swapped, id)
	}
	for _, other := range [][]cursor.Event{{a, c}, {a, b, c}, {a}} {
		if got := BatchID(other); got == id {
			t.Errorf("different events share batch id %q", id)
		}
	}
	if got := BodyID([]cursor.Event{a}); got != a.ID {
		t.Errorf("BodyID of one event = %q, want %q", got, a.ID)
	}
	body, err := Encode(config.FormatPollhook, []cursor.Event{a, b}, true)
	if err != nil {
		t.Fatal(err)
	}
	if body.ID != id {
		t.Errorf("batch body id %q, want %q", body.ID, id)
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode("xml", []cursor.Event{event("1", "updated")}, false); err == nil {
		t.Error("unknown format: no error")
	}
	if _, err := Encode(config.FormatPollhook, nil, false); err == nil {
		t.Error("no events: no error")
	}
	bad := event("1", "updated")
	bad.Data = json.RawMessage(`{"id":`)
	if _, err := Encode(config.FormatPollhook, []cursor.Event{bad}, false); err == nil {
		t.Error("invalid record JSON: no error")
	}
}

// TestFormatRules: what a destination does differently by format — the
// most events a body holds, one type a body, whether a 410 disables it,
// and its own signature header.
func TestFormatRules(t *testing.T) {
	tests := []struct {
		name         string
		maxEvents    int
		oneType      bool
		goneDisables bool
		sigHeader    string
	}{
		{"", 0, false, true, ""}, // the default: pollhook
		{config.FormatPollhook, 0, false, true, ""},
		{config.FormatCloudEvents, 0, false, true, ""},
		{config.FormatKeap, KeapMaxKeys, true, true, ""},
		{config.FormatCloudElements, 0, false, true, HeaderElementsSignature},
		{FormatPipedrive, 1, false, false, ""},
	}
	for _, tt := range tests {
		f, err := FormatByName(tt.name)
		if err != nil {
			t.Fatalf("FormatByName(%q): %v", tt.name, err)
		}
		if tt.name != "" && f.Name() != tt.name {
			t.Errorf("FormatByName(%q).Name() = %q", tt.name, f.Name())
		}
		var sig string
		for k := range f.SignatureHeaders("key", []byte("{}")) {
			sig += k
		}
		if f.MaxEvents() != tt.maxEvents || f.OneType() != tt.oneType || f.GoneDisables() != tt.goneDisables || sig != tt.sigHeader {
			t.Errorf("format %q: max events %d, one type %v, 410 disables %v, signature header %q; want %d, %v, %v, %q",
				tt.name, f.MaxEvents(), f.OneType(), f.GoneDisables(), sig, tt.maxEvents, tt.oneType, tt.goneDisables, tt.sigHeader)
		}
	}
	if _, err := FormatByName("cloudevent"); err == nil ||
		err.Error() != `unknown format "cloudevent" (want pollhook, cloudevents, keap, cloud-elements or pipedrive)` {
		t.Errorf("unknown format: error %v, want one listing every format", err)
	}
}

// TestEncodeHistory: where each format carries a record's history — the
// previous version of an update and of a delete, and the fields that
// changed — and that what is unknown is left out rather than made up.
func TestEncodeHistory(t *testing.T) {
	created := event("1", "created")
	updated := withPrevious(event("1", "updated"), `{"id":"1","note":"old","stage":1}`, "note", "stage")
	touched := withPrevious(event("1", "updated"), `{"id":"1","note":"a <b> & c"}`)
	touched.ChangedFields = []string{}
	unknown := event("1", "updated") // no content kept
	deleted := withPrevious(event("1", "deleted"), `{"id":"1","note":"last"}`)
	deleted.Data = json.RawMessage("null")
	goneUnknown := event("1", "deleted")
	goneUnknown.Data = json.RawMessage("null")

	type fields = map[string]string // key: its JSON, "" for absent
	tests := []struct {
		name string
		e    cursor.Event
		// pollhook and cloudevents: the keys of the body object
		pollhook, cloudevents fields
		// cloud-elements: raw.contacts[0]; pipedrive: current, previous
		raw, current, previous string
	}{{
		name:        "created",
		e:           created,
		pollhook:    fields{"previous": "", "changed_fields": ""},
		cloudevents: fields{"previous": "", "changedfields": ""},
		raw:         `{"id":"1","note":"a <b> & c"}`, current: `{"id":"1","note":"a <b> & c"}`, previous: `null`,
	}, {
		name:        "updated",
		e:           updated,
		pollhook:    fields{"previous": `{"id":"1","note":"old","stage":1}`, "changed_fields": `["note","stage"]`},
		cloudevents: fields{"previous": `"{\"id\":\"1\",\"note\":\"old\",\"stage\":1}"`, "changedfields": `"note,stage"`},
		raw:         `{"id":"1","note":"a <b> & c"}`, current: `{"id":"1","note":"a <b> & c"}`, previous: `{"id":"1","note":"old","stage":1}`,
	}, {
		name:        "updated in no top-level field",
		e:           touched,
		pollhook:    fields{"previous": `{"id":"1","note":"a <b> & c"}`, "changed_fields": `[]`},
		cloudevents: fields{"previous": `"{\"id\":\"1\",\"note\":\"a <b> & c\"}"`, "changedfields": ""},
		raw:         `{"id":"1","note":"a <b> & c"}`, current: `{"id":"1","note":"a <b> & c"}`, previous: `{"id":"1","note":"a <b> & c"}`,
	}, {
		name:        "updated, previous unknown",
		e:           unknown,
		pollhook:    fields{"previous": "", "changed_fields": ""},
		cloudevents: fields{"previous": "", "changedfields": ""},
		raw:         `{"id":"1","note":"a <b> & c"}`, current: `{"id":"1","note":"a <b> & c"}`, previous: `null`,
	}, {
		name:        "deleted",
		e:           deleted,
		pollhook:    fields{"data": "null", "previous": `{"id":"1","note":"last"}`, "changed_fields": ""},
		cloudevents: fields{"data": "", "previous": `"{\"id\":\"1\",\"note\":\"last\"}"`, "changedfields": ""},
		raw:         `{"id":"1","note":"last"}`, current: `null`, previous: `{"id":"1","note":"last"}`,
	}, {
		name:        "deleted, last version unknown",
		e:           goneUnknown,
		pollhook:    fields{"data": "null", "previous": "", "changed_fields": ""},
		cloudevents: fields{"data": "", "previous": ""},
		raw:         `null`, current: `null`, previous: `null`,
	}}
	check := func(t *testing.T, format string, body []byte, want fields) {
		t.Helper()
		got := decode[map[string]json.RawMessage](t, body)
		for k, w := range want {
			if string(got[k]) != w {
				t.Errorf("%s: %s = %s, want %s", format, k, got[k], w)
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := []cursor.Event{tt.e}
			b, err := Encode(config.FormatPollhook, ev, false)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "pollhook", b.Bytes, tt.pollhook)
			if b, err = Encode(config.FormatCloudEvents, ev, false); err != nil {
				t.Fatal(err)
			}
			check(t, "cloudevents", b.Bytes, tt.cloudevents)
			for k := range decode[map[string]any](t, b.Bytes) {
				if !ceAttrName.MatchString(k) {
					t.Errorf("cloudevents attribute %q breaks the naming rule", k)
				}
			}

			if b, err = Encode(config.FormatCloudElements, ev, false); err != nil {
				t.Fatal(err)
			}
			n := decode[CloudElementsNotification](t, b.Bytes)
			if raw := n.Raw["contacts"]; len(raw) != 1 || string(raw[0]) != tt.raw {
				t.Errorf("cloud-elements raw = %s, want [%s]", raw, tt.raw)
			}
			if b, err = EncodeTo(FormatPipedrive, ev, false, Recipient{WebhookID: "1"}); err != nil {
				t.Fatal(err)
			}
			p := decode[PipedriveBody](t, b.Bytes)
			if string(orNull(p.Current)) != tt.current || string(orNull(p.Previous)) != tt.previous {
				t.Errorf("pipedrive current %s previous %s, want %s and %s", p.Current, p.Previous, tt.current, tt.previous)
			}

			// The keap body has no place for history: it stays as it was.
			plain := tt.e
			plain.Previous, plain.ChangedFields = nil, nil
			withHistory, err := Encode(config.FormatKeap, ev, false)
			if err != nil {
				t.Fatal(err)
			}
			without, err := Encode(config.FormatKeap, []cursor.Event{plain}, false)
			if err != nil {
				t.Fatal(err)
			}
			if string(withHistory.Bytes) != string(without.Bytes) {
				t.Errorf("keap body changed by history:\n%s\n%s", withHistory.Bytes, without.Bytes)
			}
		})
	}
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
