package emit

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// cloudElementsFormat is format cloud-elements: a
// CloudElementsNotification, the same batched or not, signed with
// Elements-Webhook-Signature as well when the destination has a secret.
type cloudElementsFormat struct{ defaults }

func (cloudElementsFormat) Name() string { return config.FormatCloudElements }

func (cloudElementsFormat) Payload(id string, events []cursor.Event, _ bool, _ Recipient) (any, error) {
	return NewCloudElementsNotification(id, events), nil
}

func (cloudElementsFormat) SignatureHeaders(secret string, body []byte) map[string]string {
	return map[string]string{HeaderElementsSignature: CloudElementsSignature(secret, body)}
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
//	                                   by resource, in the order of events;
//	                                   for a delete, the last version known
//	                                   (null when pollhook kept none)
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
		if CloudElementsEventType(e.Type) == "DELETED" && !isNull(e.Previous) {
			data = e.Previous
		}
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
