package emit

import (
	"encoding/json"
	"net/url"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// cloudEventsFormat is format cloudevents: one event is a CloudEvent in
// structured JSON, a batch a JSON array of them, each with its own
// content type.
type cloudEventsFormat struct{ defaults }

func (cloudEventsFormat) Name() string { return config.FormatCloudEvents }

func (cloudEventsFormat) ContentType(batched bool) string {
	if batched {
		return ContentTypeCloudEventsBatch
	}
	return ContentTypeCloudEvent
}

func (cloudEventsFormat) Payload(_ string, events []cursor.Event, batched bool, _ Recipient) (any, error) {
	return eachEvent(config.FormatCloudEvents, events, batched, NewCloudEvent)
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
