package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/internal/redact"
)

// PipedriveTimeLayout is how Pipedrive writes times: UTC, to the second.
const PipedriveTimeLayout = "2006-01-02 15:04:05"

// PipedriveVersion is the only webhooks version pollhook sends: v1
// payloads.
const PipedriveVersion = "1.0"

// passwordMask stands for a stored http_auth_password, which the API never
// returns.
const passwordMask = "********"

// PipedriveWebhook is a subscription in Pipedrive's dialect, with the
// fields of Pipedrive's webhook object. pollhook has no companies or
// users: company_id, owner_id and admin_id are 0, and user_id is what the
// webhook was made with.
type PipedriveWebhook struct {
	ID              int64   `json:"id"`
	CompanyID       int64   `json:"company_id"`
	OwnerID         int64   `json:"owner_id"`
	UserID          int64   `json:"user_id"`
	EventAction     string  `json:"event_action"`
	EventObject     string  `json:"event_object"`
	SubscriptionURL string  `json:"subscription_url"`
	IsActive        int     `json:"is_active"`
	AddTime         string  `json:"add_time"`
	RemoveTime      *string `json:"remove_time"`
	Type            string  `json:"type"`
	HTTPAuthUser    *string `json:"http_auth_user"`
	// HTTPAuthPassword is "********" when a password is set: it is never
	// returned.
	HTTPAuthPassword *string `json:"http_auth_password"`
	RemoveReason     *string `json:"remove_reason"`
	LastDeliveryTime *string `json:"last_delivery_time"`
	LastHTTPStatus   *int    `json:"last_http_status"`
	AdminID          int64   `json:"admin_id"`
	Version          string  `json:"version"`
	Name             string  `json:"name"`
}

// pipedriveOK is Pipedrive's envelope of a success.
type pipedriveOK struct {
	Success bool   `json:"success"`
	Status  string `json:"status"`
	Data    any    `json:"data"`
}

// pipedriveFail is Pipedrive's envelope of an error.
type pipedriveFail struct {
	Success   bool   `json:"success"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

func pipedriveError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, pipedriveFail{Error: msg, ErrorCode: status})
}

func pipedriveData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, pipedriveOK{Success: true, Status: "ok", Data: data})
}

// servePipedrive serves Pipedrive's dialect; rest is the path after
// /v1/webhooks/.
func (a *API) servePipedrive(w http.ResponseWriter, r *http.Request, rest string) {
	if a.token == nil {
		pipedriveError(w, http.StatusNotFound, disabledMessage)
		return
	}
	// Pipedrive's clients send the token as x-api-token (the pipedrive npm
	// client) or api_token in the query (older clients), or as an OAuth
	// bearer token.
	if !a.authorized(r, "X-Api-Token", "?api_token") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pollhook"`)
		pipedriveError(w, http.StatusUnauthorized, "unauthorized access: send the http.token of pollhook's configuration as Authorization: Bearer <token>, an x-api-token header or an api_token query parameter")
		return
	}
	switch {
	case rest == "":
		switch r.Method {
		case http.MethodGet:
			a.pipedriveList(w, r)
		case http.MethodPost:
			a.pipedriveCreate(w, r)
		default:
			methodNotAllowed(w, pipedriveError, http.MethodGet, http.MethodPost)
		}
	case !strings.Contains(rest, "/"):
		if r.Method != http.MethodDelete {
			methodNotAllowed(w, pipedriveError, http.MethodDelete)
			return
		}
		a.pipedriveDelete(w, r, rest)
	default:
		pipedriveError(w, http.StatusNotFound, "no such route: /v1/webhooks/"+rest)
	}
}

// pipedriveView returns sub as a Pipedrive webhook. A subscription made
// through Keap's dialect has one when the verb of its event key is one of
// Pipedrive's actions (created, updated, deleted, or add, edit, delete);
// ok is false otherwise.
func (a *API) pipedriveView(sub cursor.Subscription, d cursor.DeliverySummary) (PipedriveWebhook, bool) {
	wh := PipedriveWebhook{
		ID: sub.ID, UserID: sub.UserID, EventAction: sub.EventAction, EventObject: sub.EventObject,
		SubscriptionURL: hookURL(sub.URL), AddTime: sub.CreatedAt.UTC().Format(PipedriveTimeLayout), Type: "general",
		Version: sub.Version, Name: sub.Name,
	}
	if sub.Dialect != DialectPipedrive {
		wh.EventAction = emit.PipedriveAction(sub.EventKey)
		wh.EventObject, _, _ = strings.Cut(sub.EventKey, ".")
		if wh.EventAction == "" {
			return PipedriveWebhook{}, false
		}
	}
	if wh.Version == "" {
		wh.Version = PipedriveVersion
	}
	if sub.Status == cursor.SubscriptionVerified {
		wh.IsActive = 1
	}
	if !sub.InactiveAt.IsZero() {
		t, reason := sub.InactiveAt.UTC().Format(PipedriveTimeLayout), sub.InactiveReason
		wh.RemoveTime, wh.RemoveReason = &t, &reason
	}
	if sub.HTTPUser != "" {
		u := sub.HTTPUser
		wh.HTTPAuthUser = &u
	}
	if sub.HTTPPassword != "" {
		p := passwordMask
		wh.HTTPAuthPassword = &p
	}
	if !d.LastAt.IsZero() {
		t, status := d.LastAt.UTC().Format(PipedriveTimeLayout), d.LastStatus
		wh.LastDeliveryTime, wh.LastHTTPStatus = &t, &status
	}
	return wh, true
}

// pipedriveWebhook returns sub as a Pipedrive webhook, with its delivery
// summary.
func (a *API) pipedriveWebhook(r *http.Request, sub cursor.Subscription) (PipedriveWebhook, bool, error) {
	d, err := a.store.DeliverySummary(r.Context(), NamePrefix+sub.Key)
	if err != nil {
		return PipedriveWebhook{}, false, err
	}
	wh, ok := a.pipedriveView(sub, d)
	return wh, ok, nil
}

func (a *API) pipedriveList(w http.ResponseWriter, r *http.Request) {
	subs, err := a.store.Subscriptions(r.Context())
	if err != nil {
		pipedriveError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	out := []PipedriveWebhook{}
	for _, s := range subs {
		wh, ok, err := a.pipedriveWebhook(r, s)
		if err != nil {
			pipedriveError(w, http.StatusInternalServerError, a.storeError(err))
			return
		}
		if ok {
			out = append(out, wh)
		}
	}
	pipedriveData(w, http.StatusOK, out)
}

// pipedriveRequest is the body of POST /v1/webhooks.
type pipedriveRequest struct {
	SubscriptionURL, EventAction, EventObject string
	Name, HTTPAuthUser, HTTPAuthPassword      string
	Version                                   string
	UserID                                    int64
}

// pipedriveFields are the fields of pipedriveRequest, by name.
func (p *pipedriveRequest) fields() map[string]*string {
	return map[string]*string{
		"subscription_url": &p.SubscriptionURL, "event_action": &p.EventAction, "event_object": &p.EventObject,
		"name": &p.Name, "http_auth_user": &p.HTTPAuthUser, "http_auth_password": &p.HTTPAuthPassword,
		"version": &p.Version,
	}
}

// readPipedrive reads a POST /v1/webhooks body, form-encoded or JSON.
func readPipedrive(w http.ResponseWriter, r *http.Request) (pipedriveRequest, int, string) {
	const want = "JSON or a form with subscription_url, event_action and event_object"
	decodeLimit(w, r)
	var req pipedriveRequest
	userID := ""
	fields := req.fields()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data" {
		var err error
		if mt == "multipart/form-data" {
			err = r.ParseMultipartForm(MaxRequestBytes)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			status, msg := bodyError(err, want)
			return req, status, msg
		}
		for name, p := range fields {
			*p = r.PostForm.Get(name)
		}
		userID = r.PostForm.Get("user_id")
	} else {
		var raw map[string]json.RawMessage
		if err := decodeJSON(r, &raw); err != nil {
			status, msg := bodyError(err, want)
			return req, status, msg
		}
		fields["user_id"] = &userID
		for name, p := range fields {
			v, ok := raw[name]
			if !ok {
				continue
			}
			s, err := jsonScalar(v)
			if err != nil {
				return req, http.StatusBadRequest, fmt.Sprintf("%s: %v", name, err)
			}
			*p = s
		}
	}
	for _, p := range fields {
		*p = strings.TrimSpace(*p)
	}
	if userID = strings.TrimSpace(userID); userID != "" {
		n, err := strconv.ParseInt(userID, 10, 64)
		if err != nil {
			return req, http.StatusBadRequest, fmt.Sprintf("user_id: want an integer (got %q)", userID)
		}
		req.UserID = n
	}
	return req, 0, ""
}

// jsonScalar returns a JSON string or number as a string, and null as "".
func jsonScalar(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	switch {
	case string(v) == "null":
		return "", nil
	case len(v) > 0 && v[0] == '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
		var n json.Number
		err := json.Unmarshal(v, &n)
		return n.String(), err
	}
	return "", fmt.Errorf("want a string (got %s)", v)
}

// pipedriveActions are the event_action values accepted: Pipedrive's v1
// names, the names its v2 API uses, and "*".
var pipedriveActions = []string{"added", "updated", "deleted", "create", "change", "delete", "*"}

func (a *API) pipedriveCreate(w http.ResponseWriter, r *http.Request) {
	req, status, msg := readPipedrive(w, r)
	if status != 0 {
		pipedriveError(w, status, msg)
		return
	}
	if msg := a.checkPipedrive(&req); msg != "" {
		pipedriveError(w, http.StatusBadRequest, msg)
		return
	}
	ctx := r.Context()
	if err := a.guard.CheckURL(ctx, req.SubscriptionURL); err != nil {
		pipedriveError(w, http.StatusBadRequest, "subscription_url: "+err.Error())
		return
	}
	now := a.now()
	sub, err := a.store.CreateSubscription(ctx, cursor.Subscription{
		Key: newKey(), Dialect: DialectPipedrive, EventAction: req.EventAction, EventObject: req.EventObject,
		URL: req.SubscriptionURL, Status: cursor.SubscriptionVerified, HTTPUser: req.HTTPAuthUser,
		HTTPPassword: req.HTTPAuthPassword, Name: req.Name, Version: req.Version, UserID: req.UserID,
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		pipedriveError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	a.activated(ctx, sub.Key, now)
	a.log.Info("pipedrive webhook created", "subscription", sub.Key, "id", sub.ID,
		"event", sub.EventAction+"."+sub.EventObject, "url", redact.URL(sub.URL))
	a.changed()
	wh, _ := a.pipedriveView(sub, cursor.DeliverySummary{})
	pipedriveData(w, http.StatusCreated, wh)
}

// checkPipedrive checks and normalizes a create request; it returns what
// is wrong, or "".
func (a *API) checkPipedrive(req *pipedriveRequest) string {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"subscription_url", req.SubscriptionURL}, {"event_action", req.EventAction}, {"event_object", req.EventObject},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return strings.Join(missing, ", ") + " required"
	}
	req.EventAction = strings.ToLower(req.EventAction)
	switch {
	case req.EventAction == "merged":
		return "event_action merged: pollhook detects no merges; want added, updated, deleted or *"
	case !slices.Contains(pipedriveActions, req.EventAction):
		return fmt.Sprintf("event_action %q: want added, updated, deleted or * (or create, change, delete)", req.EventAction)
	}
	if req.EventObject != "*" && !slices.Contains(a.objects, req.EventObject) {
		if len(a.objects) == 0 {
			return fmt.Sprintf("event_object %q: pollhook's configuration has no resources", req.EventObject)
		}
		return fmt.Sprintf("event_object %q: no configured resource has that object; want one of %s or *",
			req.EventObject, strings.Join(a.objects, ", "))
	}
	switch req.Version {
	case "", PipedriveVersion, "1":
		req.Version = PipedriveVersion
	default:
		return fmt.Sprintf("version %q: pollhook sends webhooks v1 payloads only; omit version or send %s", req.Version, PipedriveVersion)
	}
	return ""
}

func (a *API) pipedriveDelete(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil || id <= 0 {
		pipedriveError(w, http.StatusBadRequest, fmt.Sprintf("webhook id %q: want a positive integer", rawID))
		return
	}
	sub, err := a.store.SubscriptionByID(r.Context(), id)
	if errors.Is(err, cursor.ErrSubscriptionNotFound) {
		pipedriveError(w, http.StatusNotFound, fmt.Sprintf("webhook %d not found", id))
		return
	}
	if err != nil {
		pipedriveError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	if _, ok := a.pipedriveView(sub, cursor.DeliverySummary{}); !ok {
		pipedriveError(w, http.StatusNotFound, fmt.Sprintf("webhook %d not found", id))
		return
	}
	if a.delete(w, r, sub.Key, pipedriveError) {
		pipedriveData(w, http.StatusOK, map[string]int64{"id": id})
	}
}
