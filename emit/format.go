package emit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
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

// KeapMaxKeys is the most object keys one keap body holds, as in Keap's own
// REST Hooks.
const KeapMaxKeys = 1000

// FormatPipedrive is the body of Pipedrive's webhooks (v1), which the
// REST Hooks subscriptions made through Pipedrive's /v1/webhooks API
// receive.
const FormatPipedrive = "pipedrive"

// BatchIDPrefix starts the id of a body that carries more than one event.
const BatchIDPrefix = "bat_"

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
	if len(events) == 0 {
		return Body{}, errors.New("encode events: no events")
	}
	body := Body{ContentType: ContentTypeJSON, ID: BodyID(events)}
	var v any
	switch format {
	case config.FormatPollhook, "":
		if batched {
			envs := make([]Envelope, len(events))
			for i, e := range events {
				envs[i] = NewEnvelope(e)
			}
			v = envs
		} else {
			if len(events) > 1 {
				return Body{}, fmt.Errorf("encode %s: %d events in an unbatched body", format, len(events))
			}
			v = NewEnvelope(events[0])
		}
	case config.FormatCloudEvents:
		if batched {
			ces := make([]CloudEvent, len(events))
			for i, e := range events {
				ces[i] = NewCloudEvent(e)
			}
			v = ces
			body.ContentType = ContentTypeCloudEventsBatch
		} else {
			if len(events) > 1 {
				return Body{}, fmt.Errorf("encode %s: %d events in an unbatched body", format, len(events))
			}
			v = NewCloudEvent(events[0])
			body.ContentType = ContentTypeCloudEvent
		}
	case config.FormatKeap:
		k, err := NewKeapBody(events)
		if err != nil {
			return Body{}, err
		}
		v = k
	case config.FormatCloudElements:
		v = NewCloudElementsNotification(body.ID, events)
	case FormatPipedrive:
		if len(events) > 1 {
			return Body{}, fmt.Errorf("encode %s: %d events in one body (a pipedrive body holds one event)", format, len(events))
		}
		p, err := NewPipedriveBody(events[0], to)
		if err != nil {
			return Body{}, err
		}
		v = p
	default:
		return Body{}, fmt.Errorf("encode events: unknown format %q (want %s, %s, %s, %s or %s)", format,
			config.FormatPollhook, config.FormatCloudEvents, config.FormatKeap, config.FormatCloudElements, FormatPipedrive)
	}
	b, err := marshal(v)
	if err != nil {
		return Body{}, fmt.Errorf("encode %s: %w", format, err)
	}
	body.Bytes = b
	return body, nil
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

// CloudEvent is an event in the CloudEvents 1.0 JSON format. Extension
// attribute names are lower-case letters and digits only, as the
// specification requires.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            Time            `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data,omitempty"`
	// PollhookResource is the name of the resource that produced the event.
	PollhookResource string `json:"pollhookresource"`
	// DetectedAt is when pollhook saw the change.
	DetectedAt Time `json:"detectedat"`
}

// NewCloudEvent returns e as a CloudEvent.
func NewCloudEvent(e cursor.Event) CloudEvent {
	ce := CloudEvent{
		SpecVersion:      "1.0",
		ID:               e.ID,
		Source:           CloudEventSource(e.Source, e.Resource),
		Type:             e.Type,
		Subject:          e.ObjectID,
		Time:             Time(e.OccurredAt),
		DataContentType:  ContentTypeJSON,
		PollhookResource: e.Resource,
		DetectedAt:       Time(e.DetectedAt),
	}
	if !isNull(e.Data) {
		ce.Data = e.Data
	}
	return ce
}

// CloudEventSource returns the CloudEvents source of a resource's events, a
// URI-reference: /pollhook/<source>/<resource>, each name path-escaped.
func CloudEventSource(source, resource string) string {
	return "/pollhook/" + url.PathEscape(source) + "/" + url.PathEscape(resource)
}

// KeapBody is the body of a Keap REST Hooks delivery.
type KeapBody struct {
	EventKey   string    `json:"event_key"`
	ObjectType string    `json:"object_type"`
	ObjectKeys []KeapKey `json:"object_keys"`
}

// KeapKey is one changed object of a KeapBody.
type KeapKey struct {
	// ID is a json.Number for a decimal integer id, else a string.
	ID any `json:"id"`
	// APIURL is empty: pollhook does not know the upstream URL of a record.
	APIURL    string `json:"apiUrl"`
	Timestamp Time   `json:"timestamp"`
}

// NewKeapBody returns events as one Keap REST Hooks body. The events must
// share one type (the delivery engine groups them by type for this format)
// and be at most KeapMaxKeys.
func NewKeapBody(events []cursor.Event) (KeapBody, error) {
	if len(events) == 0 {
		return KeapBody{}, errors.New("encode keap: no events")
	}
	if len(events) > KeapMaxKeys {
		return KeapBody{}, fmt.Errorf("encode keap: %d events in one body (at most %d)", len(events), KeapMaxKeys)
	}
	k := KeapBody{EventKey: events[0].Type, ObjectType: events[0].Object, ObjectKeys: make([]KeapKey, len(events))}
	for i, e := range events {
		if e.Type != k.EventKey {
			return KeapBody{}, fmt.Errorf("encode keap: events of types %s and %s in one body (a keap body holds one event type)", k.EventKey, e.Type)
		}
		k.ObjectKeys[i] = KeapKey{ID: keapID(e.ObjectID), Timestamp: Time(e.OccurredAt)}
	}
	return k, nil
}

// keapID returns id as a JSON number when it is a decimal integer that
// fits in 64 bits and is written without leading zeros (so that it reads
// back as the same string), else as a string.
func keapID(id string) any {
	if id == "" || (len(id) > 1 && id[0] == '0') {
		return id
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return id
		}
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return id
	}
	return json.Number(id)
}

// CloudElementsNotification is the body of format cloud-elements, shaped
// after the Cloud Elements event notification:
//
//	{
//	  "eventId": "evt_…",              the webhook-id of the request
//	  "elementKey": "keap",            the source, when all events share one
//	  "events": [{
//	    "id": "evt_…",                 the pollhook event id
//	    "elementKey": "keap",          the source
//	    "objectType": "contacts",      the resource (Cloud Elements' poller
//	                                   resource name)
//	    "objectId": "123",
//	    "eventType": "UPDATED",        CREATED, UPDATED, DELETED or UNKNOWN
//	    "eventDate": "2026-11-22T10:04:05.123Z"   occurred_at
//	  }],
//	  "raw": {"contacts": [{…}]}       the records as the API returned them,
//	                                   by resource, in the order of events
//	}
//
// A single event and a batch have the same shape.
type CloudElementsNotification struct {
	EventID    string                       `json:"eventId"`
	ElementKey string                       `json:"elementKey,omitempty"`
	Events     []CloudElementsEvent         `json:"events"`
	Raw        map[string][]json.RawMessage `json:"raw"`
}

// CloudElementsEvent is one event of a CloudElementsNotification.
type CloudElementsEvent struct {
	ID         string `json:"id"`
	ElementKey string `json:"elementKey"`
	ObjectType string `json:"objectType"`
	ObjectID   string `json:"objectId"`
	EventType  string `json:"eventType"`
	EventDate  Time   `json:"eventDate"`
}

// NewCloudElementsNotification returns events as a Cloud Elements event
// notification whose eventId is id.
func NewCloudElementsNotification(id string, events []cursor.Event) CloudElementsNotification {
	if len(events) == 0 {
		return CloudElementsNotification{EventID: id, Events: []CloudElementsEvent{}, Raw: map[string][]json.RawMessage{}}
	}
	n := CloudElementsNotification{
		EventID: id,
		Events:  make([]CloudElementsEvent, len(events)),
		Raw:     map[string][]json.RawMessage{},
	}
	for i, e := range events {
		n.Events[i] = CloudElementsEvent{
			ID: e.ID, ElementKey: e.Source, ObjectType: e.Resource, ObjectID: e.ObjectID,
			EventType: CloudElementsEventType(e.Type), EventDate: Time(e.OccurredAt),
		}
		data := e.Data
		if len(bytes.TrimSpace(data)) == 0 {
			data = json.RawMessage("null")
		}
		n.Raw[e.Resource] = append(n.Raw[e.Resource], data)
	}
	n.ElementKey = events[0].Source
	for _, e := range events {
		if e.Source != n.ElementKey {
			n.ElementKey = ""
			break
		}
	}
	return n
}

// CloudElementsEventType maps an event type (noun.verb) to Cloud Elements'
// eventType: created and add give CREATED, updated and edit UPDATED, deleted
// and delete DELETED, any other verb UNKNOWN.
func CloudElementsEventType(eventType string) string {
	verb := eventType
	if i := strings.LastIndexByte(eventType, '.'); i >= 0 {
		verb = eventType[i+1:]
	}
	switch verb {
	case "created", "add":
		return "CREATED"
	case "updated", "edit":
		return "UPDATED"
	case "deleted", "delete":
		return "DELETED"
	}
	return "UNKNOWN"
}

// PipedriveBody is the body of format pipedrive, shaped after Pipedrive's
// webhooks v1:
//
//	{
//	  "v": 1,
//	  "matches_filters": {"current": []},
//	  "meta": {
//	    "v": 1,
//	    "action": "updated",           added, updated or deleted
//	    "object": "deal",              the event's object (noun)
//	    "id": 123,                     the object id: a number when it is a
//	                                   decimal integer, else a string
//	    "host": "crm",                 Recipient.Host, else the source
//	    "timestamp": 1795860245,       occurred_at in Unix seconds
//	    "timestamp_micro": 1795860245123000,
//	    "webhook_id": "17",            the subscription's id
//	    "is_bulk_update": false,
//	    "matches_filters": {"current": []}
//	  },
//	  "current": {…},                  the record; null for deleted
//	  "previous": null,                the record for deleted, else null
//	  "event": "updated.deal"
//	}
//
// pollhook keeps no earlier version of a record, so previous is null but
// for a delete; Pipedrive's user and company fields (user_id, company_id,
// permitted_user_ids) have no meaning here and are left out.
type PipedriveBody struct {
	V              int              `json:"v"`
	MatchesFilters PipedriveFilters `json:"matches_filters"`
	Meta           PipedriveMeta    `json:"meta"`
	Current        json.RawMessage  `json:"current"`
	Previous       json.RawMessage  `json:"previous"`
	Event          string           `json:"event"`
}

// PipedriveFilters is Pipedrive's matches_filters: the ids of the filters an
// object matches, always none here.
type PipedriveFilters struct {
	Current []int64 `json:"current"`
}

// PipedriveMeta is the meta block of a PipedriveBody.
type PipedriveMeta struct {
	V      int    `json:"v"`
	Action string `json:"action"`
	Object string `json:"object"`
	// ID is a json.Number for a decimal integer id, else a string.
	ID             any              `json:"id"`
	Host           string           `json:"host"`
	Timestamp      int64            `json:"timestamp"`
	TimestampMicro int64            `json:"timestamp_micro"`
	WebhookID      string           `json:"webhook_id"`
	IsBulkUpdate   bool             `json:"is_bulk_update"`
	MatchesFilters PipedriveFilters `json:"matches_filters"`
}

// NewPipedriveBody returns e as a Pipedrive webhook (v1) body sent to to.
// It fails for an event whose verb has no Pipedrive action.
func NewPipedriveBody(e cursor.Event, to Recipient) (PipedriveBody, error) {
	action := PipedriveAction(e.Type)
	if action == "" {
		return PipedriveBody{}, fmt.Errorf("encode %s: event type %s has no Pipedrive action (want a verb created, updated or deleted, or add, edit or delete)", FormatPipedrive, e.Type)
	}
	at := e.OccurredAt
	if at.IsZero() {
		at = e.DetectedAt
	}
	host := to.Host
	if host == "" {
		host = e.Source
	}
	none := PipedriveFilters{Current: []int64{}}
	p := PipedriveBody{
		V:              1,
		MatchesFilters: none,
		Meta: PipedriveMeta{
			V: 1, Action: action, Object: e.Object, ID: keapID(e.ObjectID), Host: host,
			Timestamp: at.Unix(), TimestampMicro: at.UnixMicro(), WebhookID: to.WebhookID,
			MatchesFilters: none,
		},
		Event: action + "." + e.Object,
	}
	var data json.RawMessage
	if !isNull(e.Data) {
		data = e.Data
	}
	if action == "deleted" {
		p.Previous = data
	} else {
		p.Current = data
	}
	return p, nil
}

// PipedriveAction returns Pipedrive's v1 event_action for an event type
// (noun.verb): added for created and add, updated for updated and edit,
// deleted for deleted and delete, and "" for any other verb.
func PipedriveAction(eventType string) string {
	switch CloudElementsEventType(eventType) {
	case "CREATED":
		return "added"
	case "UPDATED":
		return "updated"
	case "DELETED":
		return "deleted"
	}
	return ""
}
