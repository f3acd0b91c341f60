package config

import (
	"slices"
	"testing"
)

func TestMatchEvent(t *testing.T) {
	tests := []struct {
		glob, typ string
		want      bool
	}{
		{"contact.*", "contact.created", true},
		{"contact.*", "company.created", false},
		{"*.deleted", "contact.deleted", true},
		{"*.deleted", "contact.updated", false},
		{"*.*", "deal.edit", true},
		{"*", "deal.edit", true},
		{"contact.created", "contact.created", true},
		{"contact.created", "contact.createdx", false},
		{"contact", "contact.created", false},
		{"contact.*", "contact", false},
		{"con*.*", "contact.created", false},
	}
	for _, tt := range tests {
		if got := MatchEvent(tt.glob, tt.typ); got != tt.want {
			t.Errorf("MatchEvent(%q, %q) = %v, want %v", tt.glob, tt.typ, got, tt.want)
		}
	}
}

func TestEventTypes(t *testing.T) {
	tests := []struct {
		names string
		want  []string
	}{
		{EventNamesPollhook, []string{"contact.created", "contact.updated", "contact.deleted"}},
		{EventNamesKeap, []string{"contact.add", "contact.edit", "contact.delete"}},
	}
	for _, tt := range tests {
		r := &Resource{Object: "contact", EventNames: tt.names}
		if got := r.EventTypes(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: EventTypes() = %v, want %v", tt.names, got, tt.want)
		}
	}
}

func TestPossibleEventTypes(t *testing.T) {
	tests := []struct {
		names, deletes string
		want           []string
	}{
		{EventNamesPollhook, DeletesNone, []string{"contact.created", "contact.updated"}},
		{EventNamesPollhook, DeletesSnapshot, []string{"contact.created", "contact.updated", "contact.deleted"}},
		{EventNamesKeap, DeletesNone, []string{"contact.add", "contact.edit"}},
		{EventNamesKeap, DeletesSnapshot, []string{"contact.add", "contact.edit", "contact.delete"}},
	}
	for _, tt := range tests {
		r := &Resource{Object: "contact", EventNames: tt.names, Deletes: tt.deletes}
		if got := r.PossibleEventTypes(); !slices.Equal(got, tt.want) {
			t.Errorf("%s, deletes %s: PossibleEventTypes() = %v, want %v", tt.names, tt.deletes, got, tt.want)
		}
	}
}

func TestLookups(t *testing.T) {
	c := mustLoad(t, "features.good.yaml")
	if c.Source("billing").Name != "billing" || c.Resource("invoices").Name != "invoices" || c.Destination("archive").Name != "archive" {
		t.Error("a lookup by name returned the wrong item")
	}
	// The lookups return the config's own items, not copies.
	c.Source("billing").Timeout = 0
	eq(t, "timeout after a change through Source", c.Sources[1].Timeout, 0)
	if c.Source("nope") != nil || c.Resource("nope") != nil || c.Destination("nope") != nil {
		t.Error("a lookup of a missing name returned an item")
	}
}
