package emit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

func dealEvent(id, verb string, data string) cursor.Event {
	return cursor.Event{
		ID: "evt_" + id + "_" + verb, Type: "deal." + verb, Resource: "deals", Source: "crm",
		Object: "deal", ObjectID: id,
		OccurredAt: time.Date(2026, 11, 22, 10, 4, 5, 123_456_000, time.UTC),
		DetectedAt: time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC),
		Data:       json.RawMessage(data),
	}
}

// withPrevious is e with the history an update or a delete carries.
func withPrevious(e cursor.Event, previous string, changed ...string) cursor.Event {
	e.Previous = json.RawMessage(previous)
	e.ChangedFields = changed
	return e
}

func TestEncodePipedrive(t *testing.T) {
	tests := []struct {
		name string
		e    cursor.Event
		to   Recipient
		want string
	}{
		{
			name: "updated",
			e:    dealEvent("123", "updated", `{"id":123,"title":"a <b>"}`),
			to:   Recipient{WebhookID: "17"},
			want: `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"updated","object":"deal","id":123,` +
				`"host":"crm","timestamp":1795341845,"timestamp_micro":1795341845123456,"webhook_id":"17",` +
				`"is_bulk_update":false,"matches_filters":{"current":[]}},` +
				`"current":{"id":123,"title":"a <b>"},"previous":null,"event":"updated.deal"}`,
		},
		{
			name: "updated: previous is the whole record before the change",
			e:    withPrevious(dealEvent("123", "edit", `{"id":123,"stage_id":2,"title":"a"}`), `{"id":123,"stage_id":1,"title":"a"}`, "stage_id"),
			to:   Recipient{WebhookID: "17"},
			want: `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"updated","object":"deal","id":123,` +
				`"host":"crm","timestamp":1795341845,"timestamp_micro":1795341845123456,"webhook_id":"17",` +
				`"is_bulk_update":false,"matches_filters":{"current":[]}},` +
				`"current":{"id":123,"stage_id":2,"title":"a"},"previous":{"id":123,"stage_id":1,"title":"a"},"event":"updated.deal"}`,
		},
		{
			name: "keap verb add, string id, host given",
			e:    dealEvent("d-9", "add", `{"id":"d-9"}`),
			to:   Recipient{WebhookID: "3", Host: "pollhook.example"},
			want: `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"added","object":"deal","id":"d-9",` +
				`"host":"pollhook.example","timestamp":1795341845,"timestamp_micro":1795341845123456,"webhook_id":"3",` +
				`"is_bulk_update":false,"matches_filters":{"current":[]}},` +
				`"current":{"id":"d-9"},"previous":null,"event":"added.deal"}`,
		},
		{
			name: "deleted: the last version known is previous",
			e:    withPrevious(dealEvent("5", "deleted", `null`), `{"id":5}`),
			to:   Recipient{WebhookID: "17"},
			want: `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"deleted","object":"deal","id":5,` +
				`"host":"crm","timestamp":1795341845,"timestamp_micro":1795341845123456,"webhook_id":"17",` +
				`"is_bulk_update":false,"matches_filters":{"current":[]}},` +
				`"current":null,"previous":{"id":5},"event":"deleted.deal"}`,
		},
		{
			name: "deleted without data",
			e:    dealEvent("5", "delete", `null`),
			want: `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"deleted","object":"deal","id":5,` +
				`"host":"crm","timestamp":1795341845,"timestamp_micro":1795341845123456,"webhook_id":"",` +
				`"is_bulk_update":false,"matches_filters":{"current":[]}},` +
				`"current":null,"previous":null,"event":"deleted.deal"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, batched := range []bool{false, true} {
				b, err := EncodeTo(FormatPipedrive, []cursor.Event{tt.e}, batched, tt.to)
				if err != nil {
					t.Fatal(err)
				}
				if string(b.Bytes) != tt.want {
					t.Errorf("batched %v body\n got %s\nwant %s", batched, b.Bytes, tt.want)
				}
				if b.ID != tt.e.ID || b.ContentType != ContentTypeJSON {
					t.Errorf("id %q, content type %q", b.ID, b.ContentType)
				}
			}
		})
	}
}

func TestEncodePipedriveErrors(t *testing.T) {
	e := dealEvent("1", "updated", `{}`)
	if _, err := Encode(FormatPipedrive, []cursor.Event{e, dealEvent("2", "updated", `{}`)}, true); err == nil ||
		!strings.Contains(err.Error(), "a pipedrive body holds one event") {
		t.Errorf("two events: error %v", err)
	}
	if _, err := Encode(FormatPipedrive, []cursor.Event{dealEvent("1", "merged", `{}`)}, false); err == nil ||
		!strings.Contains(err.Error(), "has no Pipedrive action") {
		t.Errorf("verb merged: error %v", err)
	}
}
