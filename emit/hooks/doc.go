// Package hooks is pollhook's REST Hooks subscription API: clients
// subscribe to pollhook's events, and unsubscribe, at run time, in Keap's
// REST Hooks dialect (/hooks) or in Pipedrive's webhooks dialect
// (/v1/webhooks). It owns the HTTP handlers of both dialects and their
// authentication with http.token, the verification handshake of Keap
// hooks, the rules by which a subscription becomes inactive (Deactivate),
// and the Guard that keeps requests to subscriber URLs off internal
// addresses, checked again at every dial.
//
// Both dialects are views over one table of subscriptions in the state
// store, so subscriptions survive restarts, and one made in one dialect is
// listed in the other where that dialect can express it. Subscribers turns
// the active ones into destinations for the delivery engine, in format keap
// or pipedrive.
//
// The routes, bodies and rules as a client sees them are documented once,
// in the README's "REST Hooks subscriptions" section.
package hooks
