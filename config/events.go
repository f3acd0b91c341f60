package config

import "strings"

// Event verbs, as the diff names them.
const (
	VerbCreated = "created"
	VerbUpdated = "updated"
	VerbDeleted = "deleted"
)

var keapVerbs = map[string]string{VerbCreated: "add", VerbUpdated: "edit", VerbDeleted: "delete"}

// EventType returns the type of the resource's events for a verb (created,
// updated or deleted): contact.created, or contact.add with event_names:
// keap.
func (r *Resource) EventType(verb string) string {
	if r.EventNames == EventNamesKeap {
		if k, ok := keapVerbs[verb]; ok {
			verb = k
		}
	}
	return r.Object + "." + verb
}

// EventTypes returns the types of the resource's created, updated and
// deleted events, in that order: the names its events would have, whether
// it can emit them or not (see PossibleEventTypes).
func (r *Resource) EventTypes() []string {
	return []string{r.EventType(VerbCreated), r.EventType(VerbUpdated), r.EventType(VerbDeleted)}
}

// PossibleEventTypes returns the types of the events the resource can
// emit: created and updated, and deleted only with deletes: snapshot (no
// other mode detects a delete).
func (r *Resource) PossibleEventTypes() []string {
	types := r.EventTypes()
	if r.Deletes != DeletesSnapshot {
		types = types[:2]
	}
	return types
}

// MatchEvent reports whether an event type (noun.verb) matches a glob:
// "contact.*", "*.deleted", "*.*" and "*" (everything), or an exact type.
func MatchEvent(glob, eventType string) bool {
	if glob == "*" {
		return true
	}
	gn, gv, ok := strings.Cut(glob, ".")
	if !ok {
		return false
	}
	n, v, ok := strings.Cut(eventType, ".")
	if !ok {
		return false
	}
	return (gn == "*" || gn == n) && (gv == "*" || gv == v)
}

// Source returns the source named name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}

// Resource returns the resource named name, or nil.
func (c *Config) Resource(name string) *Resource {
	for i := range c.Resources {
		if c.Resources[i].Name == name {
			return &c.Resources[i]
		}
	}
	return nil
}

// Destination returns the destination named name, or nil.
func (c *Config) Destination(name string) *Destination {
	for i := range c.Destinations {
		if c.Destinations[i].Name == name {
			return &c.Destinations[i]
		}
	}
	return nil
}
