package emit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// Content types of request bodies.
const (
	ContentTypeJSON             = "application/json"
	ContentTypeCloudEvent       = "application/cloudevents+json"
	ContentTypeCloudEventsBatch = "application/cloudevents-batch+json"
)

// BatchIDPrefix starts the id of a body that carries more than one event.
const BatchIDPrefix = "bat_"

// Format is one event body format: how events are written in a request
// body, and the rules a destination of that format follows. There is one
// value per format, each in its own file; FormatByName returns it. A
// Format is safe for concurrent use.
type Format interface {
	// Name is the format's name, as a destination's format key says it.
	Name() string
	// ContentType is the Content-Type of a body, batched or not (see
	// Encode).
	ContentType(batched bool) string
	// Payload returns the JSON value of the body that carries events (at
	// least one) to recipient to; id is the body's webhook-id. It fails
	// for a body the format cannot hold.
	Payload(id string, events []cursor.Event, batched bool, to Recipient) (any, error)
	// MaxEvents is the most events one body holds; 0 when only the
	// destination's batch.max_events bounds it.
	MaxEvents() int
	// OneType reports whether the events of one body must share one
	// event type.
	OneType() bool
	// GoneDisables reports whether a 410 Gone answer disables the
	// destination; when it does not, a 410 is a failure like any other.
	GoneDisables() bool
	// SignatureHeaders returns the headers that sign body with secret in
	// the format's own way, sent besides the Standard Webhooks ones; nil
	// when the format has none. Their names do not depend on body. A
	// format that has them signs with the secret as written, so any
	// string is a valid secret for it.
	SignatureHeaders(secret string, body []byte) map[string]string
}

// formats are the known formats, in the order their names are listed.
var formats = []Format{pollhookFormat{}, cloudEventsFormat{}, keapFormat{}, cloudElementsFormat{}, pipedriveFormat{}}

// FormatByName returns the format called name; "" is config.DefaultFormat.
// The error lists the valid names.
func FormatByName(name string) (Format, error) {
	if name == "" {
		name = config.DefaultFormat
	}
	for _, f := range formats {
		if f.Name() == name {
			return f, nil
		}
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.Name()
	}
	last := len(names) - 1
	return nil, fmt.Errorf("unknown format %q (want %s or %s)", name, strings.Join(names[:last], ", "), names[last])
}

// defaults are the rules most formats follow: ContentTypeJSON, no bound
// of the format's own on a body's events, any mix of event types, a 410
// disables the destination, and no signature of the format's own.
type defaults struct{}

func (defaults) ContentType(bool) string                           { return ContentTypeJSON }
func (defaults) MaxEvents() int                                    { return 0 }
func (defaults) OneType() bool                                     { return false }
func (defaults) GoneDisables() bool                                { return true }
func (defaults) SignatureHeaders(string, []byte) map[string]string { return nil }

// eachEvent returns the payload of a format that writes every event on its
// own as conv does: conv's value of the one event, or when batched a JSON
// array of them.
func eachEvent[T any](format string, events []cursor.Event, batched bool, conv func(cursor.Event) T) (any, error) {
	if !batched {
		if len(events) > 1 {
			return nil, fmt.Errorf("encode %s: %d events in an unbatched body", format, len(events))
		}
		return conv(events[0]), nil
	}
	out := make([]T, len(events))
	for i, e := range events {
		out[i] = conv(e)
	}
	return out, nil
}

// Body is one request body ready to send.
type Body struct {
	Bytes       []byte
	ContentType string
	// ID is the webhook-id of the request: the event's id when the body
	// carries one event, else a batch id (see BatchID).
	ID string
}

// BodyID returns the webhook-id of a body carrying events: the event's id
// for one event, else BatchID(events).
func BodyID(events []cursor.Event) string {
	if len(events) == 1 {
		return events[0].ID
	}
	return BatchID(events)
}

// BatchID returns "bat_" and a hash of the ids of events, taken in sorted
// order: the same events give the same id whatever their order, so that a
// retried batch keeps its webhook-id and receivers can de-duplicate it.
func BatchID(events []cursor.Event) string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return BatchIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// Encode returns the request body that carries events in format (one of
// config.FormatPollhook, FormatCloudEvents, FormatKeap, FormatCloudElements,
// or FormatPipedrive; empty means pollhook). batched is true for a destination whose
// batch.max_events is above 1: such a destination always gets the batch
// shape of its format, even for a single event, so that its receiver parses
// one shape only.
//
//	pollhook        one event: the Envelope object; batched: a JSON array
//	                of envelopes. application/json.
//	cloudevents     one event: a CloudEvents 1.0 event in structured JSON
//	                (application/cloudevents+json); batched: a JSON array of
//	                them (application/cloudevents-batch+json). Attributes:
//	                specversion "1.0", id (the event id), source
//	                "/pollhook/<source>/<resource>", type (noun.verb),
//	                subject (the object id), time (occurred_at),
//	                datacontenttype "application/json", data (the record;
//	                left out when it is null), and the extensions
//	                pollhookresource (the resource name) and detectedat.
//	keap            the Keap REST Hooks body, batched or not:
//	                {"event_key": type, "object_type": object,
//	                "object_keys": [{"id", "apiUrl": "", "timestamp"}]}.
//	                id is a JSON number when the object id is a decimal
//	                integer (as Keap's ids are), else a string; timestamp is
//	                occurred_at. All events of a body must share one type,
//	                and a body holds at most KeapMaxKeys of them.
//	cloud-elements  a Cloud Elements event notification, batched or not:
//	                {"eventId", "elementKey", "events": [...], "raw": {...}}
//	                (see CloudElementsNotification).
//	pipedrive       a Pipedrive webhook (v1) body, one event a request,
//	                batched or not (see PipedriveBody). Encode leaves
//	                meta.webhook_id empty; EncodeTo fills it in.
//
// Times are written in TimeLayout. Record data is written as the upstream
// API returned it (not re-escaped). Encode fails for no events, an unknown
// format, or a body the format cannot hold.
func Encode(format string, events []cursor.Event, batched bool) (Body, error) {
	return EncodeTo(format, events, batched, Recipient{})
}

// Recipient is the subscription a body is sent to, for the formats that
// name it in the body.
type Recipient struct {
	// WebhookID is the subscription's id: meta.webhook_id of format
	// pipedrive.
	WebhookID string
	// Host is meta.host of format pipedrive; empty means the event's
	// source.
	Host string
}

// EncodeTo is Encode for a body sent to recipient to.
func EncodeTo(format string, events []cursor.Event, batched bool, to Recipient) (Body, error) {
	f, err := FormatByName(format)
	if err != nil {
		return Body{}, fmt.Errorf("encode events: %w", err)
	}
	return encode(f, events, batched, to)
}

// encode is EncodeTo for a format already looked up.
func encode(f Format, events []cursor.Event, batched bool, to Recipient) (Body, error) {
	if len(events) == 0 {
		return Body{}, errors.New("encode events: no events")
	}
	id := BodyID(events)
	v, err := f.Payload(id, events, batched, to)
	if err != nil {
		return Body{}, err
	}
	b, err := marshal(v)
	if err != nil {
		return Body{}, fmt.Errorf("encode %s: %w", f.Name(), err)
	}
	return Body{Bytes: b, ContentType: f.ContentType(batched), ID: id}, nil
}

// marshal is json.Marshal without HTML escaping, so that records keep the
// bytes the upstream API sent (a "<" stays a "<").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// isNull reports whether data is absent or the JSON null.
func isNull(data json.RawMessage) bool {
	d := bytes.TrimSpace(data)
	return len(d) == 0 || string(d) == "null"
}
