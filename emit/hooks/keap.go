package hooks

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/redact"
)

// KeapHook is a subscription in Keap's dialect, as Keap's REST Hooks API
// writes it.
type KeapHook struct {
	Key      string `json:"key"`
	EventKey string `json:"eventKey"`
	HookURL  string `json:"hookUrl"`
	// Status is Unverified, Verified or Inactive.
	Status string `json:"status"`
}

// keapRequest is the body of POST /hooks and PUT /hooks/{key}.
type keapRequest struct {
	EventKey string `json:"eventKey"`
	HookURL  string `json:"hookUrl"`
}

// keapMessage is the body of an error in Keap's dialect.
type keapMessage struct {
	Message string `json:"message"`
}

func keapError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, keapMessage{Message: msg})
}

// writeJSON writes v as JSON, without escaping HTML.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"message":"encode response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func methodNotAllowed(w http.ResponseWriter, writeErr func(http.ResponseWriter, int, string), methods ...string) {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeErr(w, http.StatusMethodNotAllowed, "method not allowed: want "+strings.Join(methods, " or "))
}

// serveKeap serves Keap's dialect; rest is the path after /hooks/.
func (a *API) serveKeap(w http.ResponseWriter, r *http.Request, rest string) {
	if a.token == nil {
		keapError(w, http.StatusNotFound, disabledMessage)
		return
	}
	if !a.authorized(r, "X-Keap-API-Key") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pollhook"`)
		keapError(w, http.StatusUnauthorized, "missing or wrong token: send the http.token of pollhook's configuration as Authorization: Bearer <token>")
		return
	}
	key, action, _ := strings.Cut(rest, "/")
	switch {
	case rest == "":
		switch r.Method {
		case http.MethodGet:
			a.keapList(w, r)
		case http.MethodPost:
			a.keapCreate(w, r)
		default:
			methodNotAllowed(w, keapError, http.MethodGet, http.MethodPost)
		}
	case rest == "event_keys":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, keapError, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, a.eventKeys)
	case action == "":
		switch r.Method {
		case http.MethodGet:
			a.keapGet(w, r, key)
		case http.MethodPut:
			a.keapUpdate(w, r, key)
		case http.MethodDelete:
			a.keapDelete(w, r, key)
		default:
			methodNotAllowed(w, keapError, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case action == "verify" || action == "delayedVerify":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, keapError, http.MethodPost)
			return
		}
		if action == "verify" {
			a.keapVerify(w, r, key)
		} else {
			a.keapDelayedVerify(w, r, key)
		}
	default:
		keapError(w, http.StatusNotFound, "no such route: /hooks/"+rest)
	}
}

// keapView returns sub as a Keap hook, its hookUrl without user
// information and with its query values hidden (see hookURL). A
// subscription made through
// Pipedrive's dialect has one when its action and object name exactly one
// event key; ok is false otherwise.
func (a *API) keapView(sub cursor.Subscription) (KeapHook, bool) {
	h := KeapHook{Key: sub.Key, EventKey: sub.EventKey, HookURL: hookURL(sub.URL), Status: string(sub.Status)}
	if sub.Dialect != DialectPipedrive {
		return h, true
	}
	h.EventKey = ""
	if sub.EventObject == "*" {
		return KeapHook{}, false
	}
	for _, v := range pipedriveVerbs(sub.EventAction) {
		k := sub.EventObject + "." + v
		if !a.keys[k] {
			continue
		}
		if h.EventKey != "" {
			return KeapHook{}, false // both namings configured: no single key
		}
		h.EventKey = k
	}
	return h, h.EventKey != ""
}

// keapFind returns the subscription key as Keap's dialect sees it, or
// answers 404 (or 500) and returns ok false.
func (a *API) keapFind(w http.ResponseWriter, r *http.Request, key string) (cursor.Subscription, KeapHook, bool) {
	sub, err := a.store.Subscription(r.Context(), key)
	if errors.Is(err, cursor.ErrSubscriptionNotFound) {
		keapError(w, http.StatusNotFound, fmt.Sprintf("no hook with key %q", key))
		return cursor.Subscription{}, KeapHook{}, false
	}
	if err != nil {
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return cursor.Subscription{}, KeapHook{}, false
	}
	h, ok := a.keapView(sub)
	if !ok {
		keapError(w, http.StatusNotFound, fmt.Sprintf("no hook with key %q (a Pipedrive webhook with a wildcard is not a Keap hook: see GET /v1/webhooks)", key))
		return cursor.Subscription{}, KeapHook{}, false
	}
	return sub, h, true
}

func (a *API) keapList(w http.ResponseWriter, r *http.Request) {
	subs, err := a.store.Subscriptions(r.Context())
	if err != nil {
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	out := []KeapHook{}
	for _, s := range subs {
		if h, ok := a.keapView(s); ok {
			out = append(out, h)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) keapGet(w http.ResponseWriter, r *http.Request, key string) {
	if _, h, ok := a.keapFind(w, r, key); ok {
		writeJSON(w, http.StatusOK, h)
	}
}

// keapRead decodes and checks a POST or PUT body: a known eventKey and an
// allowed hookUrl. It answers the error and returns ok false.
func (a *API) keapRead(w http.ResponseWriter, r *http.Request) (keapRequest, bool) {
	const want = `JSON {"eventKey": "…", "hookUrl": "https://…"}`
	decodeLimit(w, r)
	var req keapRequest
	if err := decodeJSON(r, &req); err != nil {
		status, msg := bodyError(err, want)
		keapError(w, status, msg)
		return req, false
	}
	req.EventKey, req.HookURL = strings.TrimSpace(req.EventKey), strings.TrimSpace(req.HookURL)
	var missing []string
	if req.EventKey == "" {
		missing = append(missing, "eventKey")
	}
	if req.HookURL == "" {
		missing = append(missing, "hookUrl")
	}
	if len(missing) > 0 {
		keapError(w, http.StatusBadRequest, strings.Join(missing, " and ")+" required: want "+want)
		return req, false
	}
	if !a.keys[req.EventKey] {
		keapError(w, http.StatusBadRequest, a.unknownKey(req.EventKey))
		return req, false
	}
	if err := a.guard.CheckURL(r.Context(), req.HookURL); err != nil {
		keapError(w, http.StatusBadRequest, "hookUrl: "+err.Error())
		return req, false
	}
	return req, true
}

func (a *API) unknownKey(k string) string {
	if len(a.eventKeys) == 0 {
		return fmt.Sprintf("unknown eventKey %q: pollhook's configuration has no resources, so there are no event keys", k)
	}
	return fmt.Sprintf("unknown eventKey %q: want one of %s (GET /hooks/event_keys)", k, strings.Join(a.eventKeys, ", "))
}

func (a *API) keapCreate(w http.ResponseWriter, r *http.Request) {
	req, ok := a.keapRead(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	now := a.now()
	sub, err := a.store.CreateSubscription(ctx, cursor.Subscription{
		Key: newKey(), Dialect: DialectKeap, EventKey: req.EventKey, URL: req.HookURL,
		Status: cursor.SubscriptionUnverified, CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	a.log.Info("hook created", "subscription", sub.Key, "event_key", sub.EventKey, "url", redact.URL(sub.URL))
	a.changed()
	sub, err = a.verify(ctx, sub.Key)
	if err != nil {
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	h, _ := a.keapView(sub)
	w.Header().Set("Location", "/hooks/"+sub.Key)
	writeJSON(w, http.StatusCreated, h)
}

// errPipedriveOnly is returned by a Keap operation on a subscription made
// through Pipedrive's dialect that has no meaning there.
var errPipedriveOnly = errors.New("made through /v1/webhooks")

func (a *API) keapUpdate(w http.ResponseWriter, r *http.Request, key string) {
	sub, _, ok := a.keapFind(w, r, key)
	if !ok {
		return
	}
	if sub.Dialect == DialectPipedrive {
		keapError(w, http.StatusBadRequest, fmt.Sprintf("hook %s was made through Pipedrive's /v1/webhooks API, which has no update: delete it and create it again", key))
		return
	}
	req, ok := a.keapRead(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	now := a.now()
	moved := false
	sub, err := a.store.UpdateSubscription(ctx, key, func(s *cursor.Subscription) error {
		if s.Dialect == DialectPipedrive {
			return errPipedriveOnly
		}
		s.EventKey = req.EventKey
		// A hook read back and written again carries its hookUrl as
		// shown: the same URL.
		if s.URL != req.HookURL && hookURL(s.URL) != req.HookURL {
			moved = true
			s.URL, s.Secret, s.Status = req.HookURL, "", cursor.SubscriptionUnverified
			s.InactiveAt, s.InactiveReason = time.Time{}, ""
		}
		s.UpdatedAt = now
		return nil
	})
	switch {
	case errors.Is(err, cursor.ErrSubscriptionNotFound):
		keapError(w, http.StatusNotFound, fmt.Sprintf("no hook with key %q", key))
		return
	case errors.Is(err, errPipedriveOnly):
		keapError(w, http.StatusBadRequest, fmt.Sprintf("hook %s was made through Pipedrive's /v1/webhooks API, which has no update: delete it and create it again", key))
		return
	case err != nil:
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	a.log.Info("hook updated", "subscription", key, "event_key", sub.EventKey, "url", redact.URL(sub.URL))
	a.changed()
	if moved {
		if sub, err = a.verify(ctx, key); err != nil {
			keapError(w, http.StatusInternalServerError, a.storeError(err))
			return
		}
	}
	h, _ := a.keapView(sub)
	writeJSON(w, http.StatusOK, h)
}

func (a *API) keapDelete(w http.ResponseWriter, r *http.Request, key string) {
	if _, _, ok := a.keapFind(w, r, key); !ok {
		return
	}
	if a.delete(w, r, key, keapError) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// delete deletes subscription key. It answers an error itself, and
// reports whether the subscription was deleted.
func (a *API) delete(w http.ResponseWriter, r *http.Request, key string, writeErr func(http.ResponseWriter, int, string)) bool {
	err := a.store.DeleteSubscription(r.Context(), key)
	switch {
	case errors.Is(err, cursor.ErrSubscriptionNotFound):
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no subscription with key %q", key))
		return false
	case err != nil:
		writeErr(w, http.StatusInternalServerError, a.storeError(err))
		return false
	}
	a.log.Info("subscription deleted", "subscription", key)
	a.changed()
	return true
}

func (a *API) keapVerify(w http.ResponseWriter, r *http.Request, key string) {
	sub, _, ok := a.keapFind(w, r, key)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := a.guard.CheckURL(ctx, sub.URL); err != nil {
		keapError(w, http.StatusBadRequest, "hookUrl: "+err.Error())
		return
	}
	var err error
	if sub.Dialect == DialectPipedrive {
		// Pipedrive webhooks have no handshake: verifying reactivates.
		now := a.now()
		sub, err = a.store.UpdateSubscription(ctx, key, func(s *cursor.Subscription) error {
			s.Status, s.InactiveAt, s.InactiveReason, s.UpdatedAt = cursor.SubscriptionVerified, time.Time{}, "", now
			return nil
		})
		if err == nil {
			a.activated(ctx, key, now)
			a.log.Info("pipedrive webhook reactivated", "subscription", key)
			a.changed()
		}
	} else {
		sub, err = a.verify(ctx, key)
	}
	if errors.Is(err, cursor.ErrSubscriptionNotFound) {
		keapError(w, http.StatusNotFound, fmt.Sprintf("no hook with key %q", key))
		return
	}
	if err != nil {
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	h, _ := a.keapView(sub)
	writeJSON(w, http.StatusOK, h)
}

// Errors of a delayed verification, answered 400.
var (
	errNoHandshake = errors.New("no verification is pending")
	errWrongSecret = errors.New("wrong secret")
)

func (a *API) keapDelayedVerify(w http.ResponseWriter, r *http.Request, key string) {
	sub, _, ok := a.keapFind(w, r, key)
	if !ok {
		return
	}
	if sub.Dialect == DialectPipedrive {
		keapError(w, http.StatusBadRequest, fmt.Sprintf("hook %s was made through Pipedrive's /v1/webhooks API and has no handshake to confirm", key))
		return
	}
	got := r.Header.Get(HeaderHookSecret)
	if got == "" {
		keapError(w, http.StatusBadRequest, "X-Hook-Secret header required: send the secret pollhook sent to the hookUrl in its last verification request")
		return
	}
	now := a.now()
	was := sub.Status
	sub, err := a.store.UpdateSubscription(r.Context(), key, func(s *cursor.Subscription) error {
		if s.Secret == "" {
			return errNoHandshake
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.Secret)) != 1 {
			return errWrongSecret
		}
		if s.Status != cursor.SubscriptionVerified {
			s.Status, s.InactiveAt, s.InactiveReason, s.UpdatedAt = cursor.SubscriptionVerified, time.Time{}, "", now
		}
		return nil
	})
	switch {
	case errors.Is(err, errNoHandshake):
		keapError(w, http.StatusBadRequest, fmt.Sprintf("hook %s has no verification pending: POST /hooks/%s/verify first, then send back the X-Hook-Secret it carries", key, key))
		return
	case errors.Is(err, errWrongSecret):
		keapError(w, http.StatusBadRequest, fmt.Sprintf("X-Hook-Secret does not match the secret of the last verification request sent for hook %s", key))
		return
	case errors.Is(err, cursor.ErrSubscriptionNotFound):
		keapError(w, http.StatusNotFound, fmt.Sprintf("no hook with key %q", key))
		return
	case err != nil:
		keapError(w, http.StatusInternalServerError, a.storeError(err))
		return
	}
	if was != cursor.SubscriptionVerified {
		a.activated(r.Context(), key, now)
		a.log.Info("subscription verified (delayed)", "subscription", key, "url", redact.URL(sub.URL))
		a.changed()
	}
	h, _ := a.keapView(sub)
	writeJSON(w, http.StatusOK, h)
}
