// Package emit turns outbox events into what receivers get: the event
// envelope and its formats (pollhook, cloudevents, keap, cloud-elements,
// pipedrive: one Format value each), destinations (one transport per kind:
// http(s), stdout, file, NATS JetStream), batching, signing and delivery.
//
// # NATS JetStream
//
// A destination whose url is nats://host:port (or tls://, several
// servers separated by commas) publishes each event as one message, on
// the subject its template gives (see config.Subject), with the body in
// the destination's format (the single-event shape, even when batched),
// and these headers:
//
//	Nats-Msg-Id        the event id: the stream's duplicate window drops a
//	                   message published again under it
//	webhook-id         the event id
//	webhook-timestamp  the attempt's time, Unix seconds
//	webhook-signature  with a secret, as an HTTP delivery is signed (the
//	                   Standard Webhooks scheme, over the message body)
//	Content-Type       the format's content type
//
// plus the configured headers, and the format's own signature header
// (format cloud-elements). A Send publishes its events (several at once,
// asynchronously) and succeeds only when the stream has acknowledged
// every one (an acknowledgement that says "duplicate" counts: the stream
// has the event); a batch of which some were refused fails as a whole,
// and its retry publishes them all again under the same ids. A server that cannot
// be reached, a stream that refuses (full, or another stream's subject),
// or an acknowledgement that does not come within the destination's
// timeout fail the attempt, and the engine retries it on the schedule as
// any other. A destination with a stream name creates that stream when it
// is missing (file storage, the subject template with its placeholders
// as wildcards, the server's defaults otherwise), and uses one that
// exists as it is.
package emit

import (
	"encoding/json"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// TimeLayout is how times are written in event bodies: RFC 3339 in UTC with
// milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time is a time written in TimeLayout, in UTC.
type Time time.Time

// MarshalJSON writes t in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var v time.Time
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// Envelope is an event in the pollhook format.
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Resource   string          `json:"resource"`
	Source     string          `json:"source"`
	Object     string          `json:"object"`
	ObjectID   string          `json:"object_id"`
	OccurredAt Time            `json:"occurred_at"`
	DetectedAt Time            `json:"detected_at"`
	Data       json.RawMessage `json:"data"`
	// Previous is the record before the change (an update) or the last
	// version known (a delete); left out when pollhook keeps no content
	// of the record.
	Previous json.RawMessage `json:"previous,omitempty"`
	// ChangedFields are the top-level keys whose values differ between
	// Previous and Data, sorted: on updates whose Previous is known.
	ChangedFields []string `json:"changed_fields,omitzero"`
}

// NewEnvelope returns e in the pollhook format.
func NewEnvelope(e cursor.Event) Envelope {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return Envelope{
		ID: e.ID, Type: e.Type, Resource: e.Resource, Source: e.Source,
		Object: e.Object, ObjectID: e.ObjectID,
		OccurredAt: Time(e.OccurredAt), DetectedAt: Time(e.DetectedAt),
		Data: data, Previous: previous(e), ChangedFields: e.ChangedFields,
	}
}

// previous is e's Previous when it is known and not null.
func previous(e cursor.Event) json.RawMessage {
	if isNull(e.Previous) {
		return nil
	}
	return e.Previous
}
