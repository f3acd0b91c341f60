package emit

import (
	"encoding/json"
	"fmt"

	"github.com/pollhook/pollhook/cursor"
)

// FormatPipedrive is the body of Pipedrive's webhooks (v1), which the
// REST Hooks subscriptions made through Pipedrive's /v1/webhooks API
// receive.
const FormatPipedrive = "pipedrive"

// pipedriveFormat is format pipedrive: a PipedriveBody, one event a body,
// the same batched or not.
type pipedriveFormat struct{ defaults }

func (pipedriveFormat) Name() string   { return FormatPipedrive }
func (pipedriveFormat) MaxEvents() int { return 1 }

// GoneDisables is false: Pipedrive treats a 410 like any other failure,
// and removes a webhook only after days without a success.
func (pipedriveFormat) GoneDisables() bool { return false }

func (pipedriveFormat) Payload(_ string, events []cursor.Event, _ bool, to Recipient) (any, error) {
	if len(events) > 1 {
		return nil, fmt.Errorf("encode %s: %d events in one body (a pipedrive body holds one event)", FormatPipedrive, len(events))
	}
	return NewPipedriveBody(events[0], to)
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
//	  "previous": {…},                 the record before an update, the
//	                                   last version of a deleted one; null
//	                                   for added, and when pollhook keeps
//	                                   no content of the record
//	  "event": "updated.deal"
//	}
//
// As in Pipedrive's v1 webhooks, previous is the whole object. Pipedrive's
// user and company fields (user_id, company_id, permitted_user_ids) have
// no meaning here and are left out.
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
	if !isNull(e.Data) && action != "deleted" {
		p.Current = e.Data
	}
	if action != "added" {
		p.Previous = previous(e)
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
