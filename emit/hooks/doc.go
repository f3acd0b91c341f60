// Package hooks is pollhook's REST Hooks subscription API: clients
// subscribe to pollhook's events, and unsubscribe, at run time, in Keap's
// REST Hooks dialect or in Pipedrive's webhooks dialect. Both dialects are
// views over one table of subscriptions in the state store, so they
// survive restarts, and a subscription made in one dialect is listed in
// the other where that dialect can express it. The package also owns the
// Guard that keeps requests to subscriber URLs off internal addresses.
//
// # Keap dialect
//
// As Keap's REST Hooks API (v1), with the same JSON field names:
//
//	GET    /hooks/event_keys          ["contact.created", …]: the event keys of the configured resources
//	POST   /hooks                     {"eventKey", "hookUrl"} → 201 {"key", "eventKey", "hookUrl", "status"}
//	GET    /hooks                     [hook, …]
//	GET    /hooks/{key}               hook
//	PUT    /hooks/{key}               {"eventKey", "hookUrl"} → hook
//	DELETE /hooks/{key}               204
//	POST   /hooks/{key}/verify        run the handshake again → hook
//	POST   /hooks/{key}/delayedVerify with header X-Hook-Secret → hook
//
// A hook is made Unverified, and pollhook at once runs the verification
// handshake: it POSTs to hookUrl, with an empty body and a random
// X-Hook-Secret header. A subscriber that answers 200 OK and echoes the
// header is Verified; any other answer leaves it Unverified, and the
// subscriber may confirm later by sending the secret it received back to
// delayedVerify (Keap's delayed confirmation). Only Verified hooks receive
// events. Changing a hook's URL with PUT makes it Unverified and runs the
// handshake again. A hook whose subscriber answers 410 Gone, or fails an
// event's every attempt, becomes Inactive; verify (a new handshake, or
// delayedVerify with the secret of that new handshake) makes it Verified
// again. Errors are {"message": "…"} with status 400 (bad JSON, a missing
// field, an unknown eventKey, a refused hookUrl), 401, 404, 405 or 413.
//
// Keap hooks receive format keap (emit.KeapBody: up to 1000 events of one
// type a request), within 30 seconds, retried as Keap does: four attempts
// in all, the retries 45 s, 5 min and 30 min apart (KeapRetrySchedule).
//
// # Pipedrive dialect
//
// As Pipedrive's webhooks API (v1), with Pipedrive's envelope
// {"success": true, "status": "ok", "data": …} and errors {"success":
// false, "error": "…", "errorCode": 400}:
//
//	POST   /v1/webhooks        subscription_url, event_action, event_object, and optional
//	                           http_auth_user, http_auth_password, name, user_id, version;
//	                           JSON or a form → 201 webhook
//	GET    /v1/webhooks        [webhook, …]
//	DELETE /v1/webhooks/{id}   {"id": id}
//
// event_action is added, updated, deleted or * (Pipedrive's v2 names
// create, change and delete are accepted too); event_object is the object
// of a configured resource, or *. They become event globs: updated + deal
// is deal.updated and deal.edit (a resource with event_names: keap names
// its events add, edit and delete); * + deal is deal.*; deleted + * is
// *.deleted and *.delete. version may be 1.0 only: pollhook sends
// Pipedrive's v1 payload (format pipedrive: emit.PipedriveBody, one event
// a request). A webhook needs no handshake: it is active at once. It
// receives its events with HTTP basic auth when http_auth_user or
// http_auth_password is set, within 10 seconds, retried as Pipedrive does
// (3, 30 and 150 seconds after the first failure: PipedriveRetrySchedule);
// a 410 Gone is a failure like any other, as for Pipedrive. As Pipedrive,
// it is deactivated only after 3 days without a successful delivery; it then stays listed with is_active 0, remove_time and
// remove_reason. The webhook object has Pipedrive's fields; pollhook has
// no users or companies, so company_id, owner_id and admin_id are 0,
// http_auth_password is never returned (it reads "********" when set), and
// last_delivery_time and last_http_status come from the delivery log.
//
// # One table, two views
//
// A Keap hook is listed in /v1/webhooks with the event_action and
// event_object of its event key (contact.add is added + contact) and
// is_active 1 only while Verified. A Pipedrive webhook is listed in
// /hooks when its action and object name exactly one event key of the
// configured resources; a wildcard webhook (event_object * or event_action
// *) has no single Keap event key and is not listed there, nor can it be
// read, changed or verified through /hooks. The Keap key and the Pipedrive
// id of a subscription are both stable; either view may delete it. A
// webhook made through /v1/webhooks cannot be changed with PUT (Pipedrive
// has no update) but POST /hooks/{key}/verify reactivates it.
//
// # Authentication
//
// Every route needs the token of http.token, compared in constant time:
// as Authorization: Bearer <token> in both dialects, as X-Keap-API-Key in
// Keap's, and as x-api-token (the pipedrive npm client) or the api_token
// query parameter (older Pipedrive clients) in Pipedrive's. Without a
// configured token the API is off and every route answers 404 saying so.
//
// # Target addresses
//
// A subscriber URL must be http or https. Its host is resolved, and every
// address it resolves to must be public: loopback, private (RFC 1918,
// fc00::/7), link-local (169.254.0.0/16 — cloud metadata — and
// fe80::/10), multicast, unspecified, shared (100.64.0.0/10) and reserved
// addresses are refused with a 400 that names the class, unless
// http.allow_targets holds them. pollhook's own listen address is refused
// whatever allow_targets says. Every connection to a subscriber is checked
// again when it is dialed, so a name that resolves elsewhere later (DNS
// rebinding) is caught, and redirects are not followed.
package hooks
