package emit

import (
	"encoding/json"
	"net/url"
	"strings"

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
	// ChangedFields is the extension changedfields: the top-level keys
	// whose values differ from the previous version, sorted and joined
	// with commas; left out when none did, or when the previous version is
	// unknown (an extension is never an empty string).
	ChangedFields string `json:"changedfields,omitempty"`
	// Previous is the extension previous: the record before the change,
	// or the last version known of a deleted one, as JSON text (a
	// CloudEvents extension is a string, not an object); left out when
	// pollhook keeps no content of the record.
	Previous string `json:"previous,omitempty"`
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
	ce.ChangedFields = strings.Join(e.ChangedFields, ",")
	ce.Previous = string(previous(e))
	return ce
}

// CloudEventSource returns the CloudEvents source of a resource's events, a
// URI-reference: /pollhook/<source>/<resource>, each name path-escaped.
func CloudEventSource(source, resource string) string {
	return "/pollhook/" + url.PathEscape(source) + "/" + url.PathEscape(resource)
}
