package emit

import (
	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// pollhookFormat is format pollhook, the default: one event is its
// Envelope, a batch a JSON array of envelopes.
type pollhookFormat struct{ defaults }

func (pollhookFormat) Name() string { return config.FormatPollhook }

func (pollhookFormat) Payload(_ string, events []cursor.Event, batched bool, _ Recipient) (any, error) {
	return eachEvent(config.FormatPollhook, events, batched, NewEnvelope)
}
