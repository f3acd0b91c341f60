package emit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// KeapMaxKeys is the most object keys one keap body holds, as in Keap's own
// REST Hooks.
const KeapMaxKeys = 1000

// keapFormat is format keap: a KeapBody, the same batched or not, whose
// events share one type and are at most KeapMaxKeys.
type keapFormat struct{ defaults }

func (keapFormat) Name() string   { return config.FormatKeap }
func (keapFormat) MaxEvents() int { return KeapMaxKeys }
func (keapFormat) OneType() bool  { return true }

func (keapFormat) Payload(_ string, events []cursor.Event, _ bool, _ Recipient) (any, error) {
	return NewKeapBody(events)
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

// keapID returns id as a JSON number when it is a decimal integer from 0
// to math.MaxInt64 written without leading zeros (so that it reads back
// as the same string), else as a string: a receiver reading a larger
// number into a 64-bit integer fails, or into a float64 loses digits,
// where a string keeps the id whole.
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
