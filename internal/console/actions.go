package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// resetTimeout bounds how long a reset waits for the cycle in hand.
const resetTimeout = 20 * time.Second

// done leaves msg (an error when err is set) for the next page and sends
// the browser back to the page the form named, or to fallback.
func (c *Console) done(w http.ResponseWriter, r *http.Request, s *session, fallback, msg string, err error) {
	if err != nil {
		c.auth.setFlash(s, err.Error(), true)
	} else {
		c.auth.setFlash(s, msg, false)
	}
	back := nextPage(r.PostForm.Get("back"))
	if back == Prefix && r.PostForm.Get("back") == "" {
		back = fallback
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (c *Console) pollNow(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	err := c.rt.PollNow(name)
	c.log.Info("console: poll now", "resource", name, "error", err)
	c.done(w, r, s, Prefix+"resources/"+name,
		fmt.Sprintf("A cycle of %s starts now (or as soon as the one in hand ends).", name), err)
}

// resetView is the confirmation page of a cursor reset.
type resetView struct {
	Resource string
	From, To time.Time
	ToText   string
}

func (c *Console) resetCursor(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	back := Prefix + "resources/" + name
	text := strings.TrimSpace(r.PostForm.Get("to"))
	var to time.Time
	if text != "" {
		var err error
		if to, err = time.Parse(time.RFC3339Nano, text); err != nil {
			c.done(w, r, s, back, "", fmt.Errorf("reset %s: %q is not an RFC 3339 time such as 2026-11-01T00:00:00Z (leave it empty to forget the watermark)", name, text))
			return
		}
	}
	if r.PostForm.Get("confirm") != "yes" {
		pg, err := c.resetPage(r.Context(), name, to, text)
		c.respond(w, r, s, "reset", pg, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), resetTimeout)
	defer cancel()
	err := c.rt.ResetCursor(ctx, name, to)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("reset %s: a cycle of it is still running after %s; nothing was reset: try again when it has ended", name, resetTimeout)
	}
	c.log.Info("console: reset cursor", "resource", name, "watermark", to, "error", err)
	msg := fmt.Sprintf("%s's watermark is now %s: its next cycle reads from there. Poll now to read at once.", name, when(to))
	if to.IsZero() {
		msg = fmt.Sprintf("%s's watermark is forgotten: its next cycle reads everything again (known records report only real changes). Poll now to read at once.", name)
	}
	c.done(w, r, s, back, msg, err)
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	event := r.PostForm.Get("event")
	n, err := c.rt.Replay(r.Context(), name, event)
	if errors.Is(err, cursor.ErrUnknownEvent) {
		err = fmt.Errorf("replay: no event %q in the outbox (it may have been pruned)", event)
	}
	c.log.Info("console: replay", "destination", name, "event_id", event, "deliveries", n, "error", err)
	msg := fmt.Sprintf("%d dead deliveries to %s are pending again: they go out now.", n, name)
	if event != "" {
		msg = fmt.Sprintf("Event %s goes out to %s again now.", event, name)
	}
	c.done(w, r, s, Prefix+"destinations/"+name, msg, err)
}

func (c *Console) enable(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	err := c.rt.EnableDestination(r.Context(), name)
	c.log.Info("console: enable destination", "destination", name, "error", err)
	c.done(w, r, s, Prefix+"destinations/"+name,
		fmt.Sprintf("%s is enabled: its pending deliveries go out now.", name), err)
}

// resetPage asks to confirm the reset of name's watermark to to.
func (c *Console) resetPage(ctx context.Context, name string, to time.Time, text string) (page, error) {
	if c.rt.Config().Resource(name) == nil {
		return page{}, notFound(fmt.Sprintf("No resource %q in the running configuration.", name))
	}
	curs, err := c.state.Cursors(ctx)
	if err != nil {
		return page{}, err
	}
	data := resetView{Resource: name, To: to, ToText: text}
	for _, cs := range curs {
		if cs.Resource == name {
			data.From = cs.Watermark
		}
	}
	return page{Title: "Reset " + name,
		Crumbs: []crumb{{"Resources", Prefix + "#resources"}, {name, Prefix + "resources/" + name}}, Data: data}, nil
}
