package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit/hooks"
	"github.com/pollhook/pollhook/internal/redact"
)

// status is a badge: a word and its class (good, info, warn, bad, muted).
type status struct {
	Word, Class string
	// Note says more, as the badge's title.
	Note string
}

// resourceRow is a resource as the overview and its page show it.
type resourceRow struct {
	Name   string
	Status status
	// Last is the last cycle recorded; LastFailed the last that failed.
	Last, LastFailed *cursor.CycleRecord
	Next             time.Time
	Schedule         string
	Cursor           cursor.ResourceState
	Events24         int64
}

// destRow is a destination or a subscription as the overview and its
// page show it.
type destRow struct {
	Name, Kind, URL, Events string
	Status                  status
	Backlog                 cursor.Backlog
	// PendingMore and DeadMore mark counts above CountLimit; AsOf is then
	// the time of the sample the counts come from (zero: none).
	PendingMore, DeadMore bool
	AsOf                  time.Time
	DisabledReason        string
	DisabledAt            time.Time
	Configured            bool
	// Subscription is the REST Hooks subscription, for one.
	Subscription *cursor.Subscription
}

// overviewView is the overview page.
type overviewView struct {
	Resources    []resourceRow
	Destinations []destRow
	Events       *chart
	Backlog      *chart
	Config       string
	State        string
}

// view gathers what pages show of the state. Its methods read with ctx.
type view struct {
	c      *Console
	ctx    context.Context
	now    time.Time
	cfg    *config.Config
	leases map[string]cursor.Lease
}

func (c *Console) view(ctx context.Context) (*view, error) {
	v := &view{c: c, ctx: ctx, now: c.now(), cfg: c.rt.Config(), leases: map[string]cursor.Lease{}}
	ls, err := c.state.Leases(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		v.leases[l.Name] = l
	}
	return v, nil
}

// elsewhere is the holder of lease name when another process holds it,
// else "".
func (v *view) elsewhere(name string) string {
	l, ok := v.leases[name]
	if ok && l.Held(v.now) && l.Holder != v.c.rt.Holder() {
		return l.Holder
	}
	return ""
}

// resources returns the rows of the configured resources, with the
// events of the last ChartSpan from hours.
func (v *view) resources(hours []cursor.HourCount) ([]resourceRow, error) {
	curs, err := v.c.state.Cursors(v.ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]resourceRow, 0, len(v.cfg.Resources))
	for i := range v.cfg.Resources {
		rc := &v.cfg.Resources[i]
		row := resourceRow{Name: rc.Name, Schedule: rc.Schedule.Spec, Cursor: cursor.ResourceState{Resource: rc.Name, Known: -1}}
		for _, cs := range curs {
			if cs.Resource == rc.Name {
				row.Cursor = cs
			}
		}
		for _, h := range hours {
			if h.Resource == rc.Name {
				row.Events24 += h.Events
			}
		}
		if err := v.cycles(&row); err != nil {
			return nil, err
		}
		row.Status = v.resourceStatus(&row)
		rows = append(rows, row)
	}
	return rows, nil
}

// cycles fills in the last cycle and the last failed one of row.
func (v *view) cycles(row *resourceRow) error {
	last, err := v.c.state.Cycles(v.ctx, cursor.CycleFilter{Resource: row.Name, Limit: 1})
	if err != nil {
		return err
	}
	if len(last) > 0 {
		row.Last = &last[0]
	}
	failed, err := v.c.state.Cycles(v.ctx, cursor.CycleFilter{Resource: row.Name, Failed: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		row.LastFailed = &failed[0]
	}
	return nil
}

func (v *view) resourceStatus(row *resourceRow) status {
	if h := v.elsewhere(cursor.ResourceLease(row.Name)); h != "" {
		return status{"elsewhere", "muted", "Polled by another pollhook process: " + h}
	}
	st, ok := v.c.rt.Schedule(row.Name)
	if ok {
		row.Next = st.Next
	}
	switch {
	case ok && st.Polling:
		return status{"polling", "info", "A cycle began " + ago(v.now, st.Since)}
	case row.Last == nil:
		return status{"waiting", "muted", "No cycle has ended yet"}
	case row.Last.Error != "":
		note := "The last cycle failed"
		if st.Failures > 1 {
			note = fmt.Sprintf("The last %d cycles failed", st.Failures)
		}
		return status{"failing", "bad", note}
	case row.Last.HeldBack > 0:
		return status{"held back", "warn", "The delete guard held deletes back"}
	}
	return status{"ok", "good", "The last cycle completed"}
}

// destinations returns the rows of the configured destinations, then of
// the subscriptions; samples give the counts above CountLimit.
func (v *view) destinations(samples []cursor.BacklogSample) ([]destRow, error) {
	states, err := v.c.state.Destinations(v.ctx)
	if err != nil {
		return nil, err
	}
	subs, err := v.c.state.Subscriptions(v.ctx)
	if err != nil {
		return nil, err
	}
	var rows []destRow
	for _, d := range v.cfg.Destinations {
		rows = append(rows, destRow{Name: d.Name, Kind: "destination", URL: redact.URL(d.URL),
			Events: strings.Join(d.Events, ", "), Configured: true})
	}
	for i := range subs {
		s := &subs[i]
		events := s.EventKey
		if s.Dialect == "pipedrive" {
			events = s.EventAction + "." + s.EventObject
		}
		rows = append(rows, destRow{Name: hooks.NamePrefix + s.Key, Kind: "REST Hook (" + s.Dialect + ")",
			URL: redact.URL(s.URL), Events: events, Subscription: s})
	}
	for i := range rows {
		if err := v.backlog(&rows[i], states, samples); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// backlog fills in the backlog and status of row.
func (v *view) backlog(row *destRow, states []cursor.DestinationState, samples []cursor.BacklogSample) error {
	row.Backlog = cursor.Backlog{Destination: row.Name}
	for _, st := range states {
		if st.Name == row.Name {
			row.DisabledReason, row.DisabledAt = st.DisabledReason, st.DisabledAt
		}
	}
	b, err := v.c.state.BacklogAtMost(v.ctx, row.Name, CountLimit)
	switch {
	case errors.Is(err, cursor.ErrUnknownDestination):
		// Not started yet: nothing queued.
	case err != nil:
		return err
	default:
		row.Backlog = b
	}
	row.PendingMore, row.DeadMore = row.Backlog.Pending > CountLimit, row.Backlog.Dead > CountLimit
	if row.PendingMore || row.DeadMore {
		// The exact figures of the last sample, taken in the background.
		for _, s := range samples {
			if s.Destination == row.Name && s.At.After(row.AsOf) {
				row.AsOf = s.At
				row.Backlog.Pending, row.Backlog.Dead, row.Backlog.OldestPending = s.Pending, s.Dead, s.OldestPending
			}
		}
	}
	sub := row.Subscription
	switch h := v.elsewhere(cursor.DestinationLease(row.Name)); {
	case row.Backlog.Disabled:
		row.Status = status{"disabled", "bad", row.DisabledReason}
	case sub != nil && sub.Status != cursor.SubscriptionVerified:
		row.Status = status{strings.ToLower(string(sub.Status)), "warn", sub.InactiveReason}
	case h != "":
		row.Status = status{"elsewhere", "muted", "Delivered to by another pollhook process: " + h}
	case row.Backlog.Dead > 0:
		row.Status = status{"dead deliveries", "warn", "Some events failed every attempt: replay them"}
	case row.Backlog.Pending > 0:
		row.Status = status{"delivering", "info", "Deliveries are pending"}
	default:
		row.Status = status{"ok", "good", "Nothing pending"}
	}
	return nil
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	pg, err := c.overviewPage(r.Context())
	c.respond(w, r, s, "overview", pg, err)
}

func (c *Console) overviewPage(ctx context.Context) (page, error) {
	v, err := c.view(ctx)
	if err != nil {
		return page{}, err
	}
	hours, err := c.state.EventsPerHour(ctx, v.now.Add(-ChartSpan))
	if err != nil {
		return page{}, err
	}
	samples, err := c.state.BacklogHistory(ctx, "", v.now.Add(-ChartSpan))
	if err != nil {
		return page{}, err
	}
	res, err := v.resources(hours)
	if err != nil {
		return page{}, err
	}
	dests, err := v.destinations(samples)
	if err != nil {
		return page{}, err
	}
	var names, destNames []string
	for _, row := range res {
		names = append(names, row.Name)
	}
	for _, row := range dests {
		destNames = append(destNames, row.Name)
	}
	data := overviewView{
		Resources: res, Destinations: dests,
		Events:  eventsChart(hours, names, v.now, halfW),
		Backlog: backlogChart(samples, destNames, v.now, c.sampleEvery, halfW),
		Config:  v.cfg.File, State: v.cfg.State.Path,
	}
	pg := page{Title: "Overview", Data: data}
	for _, row := range res {
		if row.Status.Word == "polling" {
			pg.Refresh = 3
		}
	}
	return pg, nil
}

// resourceView is a resource's page.
type resourceView struct {
	Row    resourceRow
	Source string
	Cycles []cursor.CycleRecord
	// MoreCycles is the number to list older cycles before; 0 for none.
	MoreCycles int64
	Events     []cursor.Event
	MoreEvents int64
	Chart      *chart
	// ResetTo is the reset form's value: the watermark now.
	ResetTo string
}

func (c *Console) resource(w http.ResponseWriter, r *http.Request, s *session) {
	pg, err := c.resourcePage(r.Context(), r.PathValue("name"), r.URL.Query())
	c.respond(w, r, s, "resource", pg, err)
}

func (c *Console) resourcePage(ctx context.Context, name string, q url.Values) (page, error) {
	v, err := c.view(ctx)
	if err != nil {
		return page{}, err
	}
	rc := v.cfg.Resource(name)
	if rc == nil {
		return page{}, notFound(fmt.Sprintf("No resource %q in the running configuration.", name))
	}
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	eventsBefore, _ := strconv.ParseInt(q.Get("events_before"), 10, 64)
	hours, err := c.state.EventsPerHour(ctx, v.now.Add(-ChartSpan))
	if err != nil {
		return page{}, err
	}
	var own []cursor.HourCount
	for _, h := range hours {
		if h.Resource == name {
			own = append(own, h)
		}
	}
	rows, err := v.resources(own)
	if err != nil {
		return page{}, err
	}
	data := resourceView{Chart: eventsChart(own, []string{name}, v.now, fullW)}
	for _, row := range rows {
		if row.Name == name {
			data.Row = row
		}
	}
	data.Source = rc.Source + " · " + redact.URL(v.cfg.Source(rc.Source).BaseURL)
	data.ResetTo = iso(data.Row.Cursor.Watermark)
	data.Cycles, err = c.state.Cycles(ctx, cursor.CycleFilter{Resource: name, Before: before, Limit: CycleRows + 1})
	if err != nil {
		return page{}, err
	}
	if len(data.Cycles) > CycleRows {
		data.Cycles = data.Cycles[:CycleRows]
		data.MoreCycles = data.Cycles[CycleRows-1].Cycle
	}
	err = c.state.EachEvent(ctx, cursor.EventFilter{Resource: name, Newest: true, BeforeSeq: eventsBefore, Limit: PageRows + 1},
		func(e cursor.Event) error { data.Events = append(data.Events, e); return nil })
	if err != nil {
		return page{}, err
	}
	if len(data.Events) > PageRows {
		data.Events = data.Events[:PageRows]
		data.MoreEvents = data.Events[PageRows-1].Seq
	}
	pg := page{Title: name, Crumbs: []crumb{{"Resources", Prefix + "#resources"}}, Data: data}
	if data.Row.Status.Word == "polling" {
		pg.Refresh = 2
	}
	return pg, nil
}

// deliveryRow is a delivery with its last attempts.
type deliveryRow struct {
	cursor.Delivery
	Log []cursor.AttemptLog
}

// destinationView is a destination's page.
type destinationView struct {
	Row         destRow
	Format      string
	Pending     []deliveryRow
	MorePending int64
	Dead        []deliveryRow
	MoreDead    int64
	Chart       *chart
}

func (c *Console) destination(w http.ResponseWriter, r *http.Request, s *session) {
	pg, err := c.destinationPage(r.Context(), r.PathValue("name"), r.URL.Query())
	c.respond(w, r, s, "destination", pg, err)
}

func (c *Console) destinationPage(ctx context.Context, name string, q url.Values) (page, error) {
	v, err := c.view(ctx)
	if err != nil {
		return page{}, err
	}
	samples, err := c.state.BacklogHistory(ctx, name, v.now.Add(-ChartSpan))
	if err != nil {
		return page{}, err
	}
	rows, err := v.destinations(samples)
	if err != nil {
		return page{}, err
	}
	i := slices.IndexFunc(rows, func(d destRow) bool { return d.Name == name })
	if i < 0 {
		return page{}, notFound(fmt.Sprintf("No destination or subscription %q.", name))
	}
	data := destinationView{Row: rows[i], Chart: backlogChart(samples, []string{name}, v.now, c.sampleEvery, fullW)}
	if d := v.cfg.Destination(name); d != nil {
		data.Format = d.Format
	} else if sub := data.Row.Subscription; sub != nil {
		data.Format = sub.Dialect
	}
	pendingBefore, _ := strconv.ParseInt(q.Get("pending_before"), 10, 64)
	deadBefore, _ := strconv.ParseInt(q.Get("dead_before"), 10, 64)
	if data.Pending, data.MorePending, err = c.deliveries(ctx, name, cursor.StatusPending, pendingBefore); err != nil {
		return page{}, err
	}
	if data.Dead, data.MoreDead, err = c.deliveries(ctx, name, cursor.StatusDead, deadBefore); err != nil {
		return page{}, err
	}
	return page{Title: name, Crumbs: []crumb{{"Destinations", Prefix + "#destinations"}}, Data: data}, nil
}

// deliveries returns a page of dest's deliveries of status before the
// outbox position before (0: the newest), with their last attempts, and
// the position to read the next page from (0: none).
func (c *Console) deliveries(ctx context.Context, dest string, status cursor.DeliveryStatus, before int64) ([]deliveryRow, int64, error) {
	ds, err := c.state.Deliveries(ctx, cursor.DeliveryFilter{Destination: dest, Status: status, BeforeSeq: before, Limit: PageRows + 1})
	if err != nil {
		return nil, 0, err
	}
	var more int64
	if len(ds) > PageRows {
		ds = ds[:PageRows]
		more = ds[PageRows-1].Seq
	}
	rows, err := c.withAttempts(ctx, ds)
	return rows, more, err
}

// withAttempts adds the last attempts of each delivery.
func (c *Console) withAttempts(ctx context.Context, ds []cursor.Delivery) ([]deliveryRow, error) {
	rows := make([]deliveryRow, len(ds))
	for i, d := range ds {
		as, err := c.state.Attempts(ctx, cursor.AttemptFilter{Destination: d.Destination, EventID: d.EventID, Limit: AttemptRows})
		if err != nil {
			return nil, err
		}
		rows[i] = deliveryRow{Delivery: d, Log: as}
	}
	return rows, nil
}

// eventView is an event's page.
type eventView struct {
	Event cursor.Event
	// Data and Previous are the record's JSON, indented; Previous is ""
	// when the event carries none.
	Data, Previous string
	// NoneChanged is true for an update whose changed fields are known
	// and empty.
	NoneChanged bool
	Deliveries  []deliveryRow
}

// indented is JSON b indented for reading, or b as it is when it is not
// JSON.
func indented(b []byte) string {
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		return pretty.String()
	}
	return string(b)
}

func (c *Console) event(w http.ResponseWriter, r *http.Request, s *session) {
	pg, err := c.eventPage(r.Context(), r.PathValue("id"))
	c.respond(w, r, s, "event", pg, err)
}

func (c *Console) eventPage(ctx context.Context, id string) (page, error) {
	e, err := c.state.Event(ctx, id)
	if errors.Is(err, cursor.ErrUnknownEvent) {
		return page{}, notFound(fmt.Sprintf("No event %q in the outbox (it may have been pruned).", id))
	}
	if err != nil {
		return page{}, err
	}
	data := eventView{Event: e, Data: indented(e.Data)}
	if len(e.Previous) > 0 {
		data.Previous = indented(e.Previous)
	}
	data.NoneChanged = e.ChangedFields != nil && len(e.ChangedFields) == 0
	dests, err := c.state.Destinations(ctx)
	if err != nil {
		return page{}, err
	}
	var ds []cursor.Delivery
	for _, d := range dests {
		one, err := c.state.Deliveries(ctx, cursor.DeliveryFilter{Destination: d.Name, EventID: id, Limit: 1})
		if err != nil {
			return page{}, err
		}
		ds = append(ds, one...)
	}
	if data.Deliveries, err = c.withAttempts(ctx, ds); err != nil {
		return page{}, err
	}
	return page{Title: e.Type + " " + e.ObjectID,
		Crumbs: []crumb{{"Resources", Prefix + "#resources"}, {e.Resource, Prefix + "resources/" + e.Resource}}, Data: data}, nil
}

// notFound is the error of a page that has nothing to show: its text is
// the 404 page's.
type notFound string

func (e notFound) Error() string { return string(e) }

// respond shows page name, or the page of err: a 404 for notFound, else
// the store could not be read.
func (c *Console) respond(w http.ResponseWriter, r *http.Request, s *session, name string, pg page, err error) {
	var nf notFound
	switch {
	case errors.As(err, &nf):
		c.fail(w, r, http.StatusNotFound, string(nf))
	case err != nil:
		c.storeFailed(w, r, err)
	default:
		c.show(w, s, name, pg)
	}
}

// storeFailed answers a page whose reads of the store failed.
func (c *Console) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the browser went away
	}
	c.log.Error("console page: read state store", "path", r.URL.Path, "error", err)
	c.fail(w, r, http.StatusServiceUnavailable, "The state store could not be read: "+err.Error())
}
