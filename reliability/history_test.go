package reliability

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// historyTransform is the scenario's transform: the filler dropped, the
// name upper-cased (ASCII letters, as jq's ascii_upcase), the initials
// computed.
const historyTransform = `del(.pad) | .name |= ascii_upcase | .initials = ([.name | splits(" +") | .[0:1]] | join(""))`

// TestHistory checks the record history events carry against the ground
// truth: pollhook polls, with `ignore_fields: [views]` and a transform,
// an upstream whose records are created, updated and deleted — and, as
// often, touched: only their views counter and updated date move. Every
// event received must carry as previous the version pollhook reported
// before (the ignored touches since do not move it), the fields that
// really changed, and never a change in ignored fields only; every record
// carried, data and previous, must be the transform's output of a version
// the upstream had.
func TestHistory(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "8. record history: previous, changed_fields, ignore_fields, transform")
	fig.TrialsOf = "touches"
	w := newWorld(t, UpstreamOptions{Seed: 31, RealTime: true, Initial: 40, Pad: 12})
	w.rcv.FailRate(0.05, Fail5xx)
	only := []string{"snap"}
	cfg := w.config(setup{Resources: only, Snap: snapDefault + `
    ignore_fields: [views]
    transform: '` + historyTransform + `'`})
	p := startReady(t, cfg)

	// Every 20 ms, a touch or, as often, an ordinary write.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(31, 32))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if rng.IntN(2) == 0 {
					w.up.TouchAny()
				} else {
					w.up.Mutate(0)
				}
			}
		}
	}()
	pause(time.Duration(trials(8, 40)) * time.Second)
	close(stop)
	<-done
	w.rcv.Recover()
	results := w.finish(t, p, cfg, fig, 60*time.Second, only...)

	h := CheckHistory(w.up.Truth(), w.rcv.Deliveries(), HistoryOptions{
		Resource: "snap",
		// The updated date moves with every touch; pollhook compares
		// records without it when fields are ignored.
		Ignored: []string{"updated", "views"},
		Record:  transformed,
	})
	t.Log(h.Summary())
	for i, s := range h.Problems {
		if i == 20 {
			t.Errorf("… %d more", len(h.Problems)-20)
			break
		}
		t.Error(s)
	}
	if h.Updates < 20 || h.Deletes < 3 || h.Touches < 50 {
		t.Errorf("too little exercised: %s", h.Summary())
	}
	fig.Trials = h.Touches
	fig.Note = fmt.Sprintf("%d updates and %d deletes each carried the previous version reported and exactly the fields changed; %d touches of the ignored field reported none; %d records wrong; %d events",
		h.Updates, h.Deletes, h.Touches, len(h.Problems), results[0].Events)
	if !h.OK() {
		fig.Note += " — see the log"
	}
}

// transformed checks that rec is what historyTransform makes of version
// rev of o.
func transformed(o *Object, rev int, rec map[string]json.RawMessage) string {
	var name, initials string
	json.Unmarshal(rec["name"], &name)
	json.Unmarshal(rec["initials"], &initials)
	want := asciiUpper(o.Names[rev])
	switch {
	case rec["pad"] != nil:
		return "the transform did not drop pad"
	case name != want:
		return fmt.Sprintf("name %q, want %q (rev %d upper-cased)", name, want, rev)
	case initials != initialsOf(want):
		return fmt.Sprintf("initials %q, want %q", initials, initialsOf(want))
	case rec["views"] == nil:
		return "no views: the ignored field is still kept and emitted"
	}
	return ""
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

func initialsOf(s string) string {
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		r, _ := utf8.DecodeRuneInString(w)
		b.WriteRune(r)
	}
	return b.String()
}
