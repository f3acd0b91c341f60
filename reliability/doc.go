// Package reliability proves pollhook's promise — no change lost, no change
// reported twice under different event ids — against a misbehaving
// upstream, receiver and machine.
//
// The package holds three test instruments and, in its tests, the
// scenarios that drive the real pollhook binary with them:
//
//   - [Upstream], an HTTP API over a dataset that the test mutates, that
//     keeps the ground-truth change log and injects faults on command
//     (5xx, 429, slow responses, truncated JSON, HTML with 200, an empty
//     listing, a repeating cursor, garbage and oversized bodies, records
//     left out);
//   - [Receiver], a webhook endpoint that records every delivery, checks
//     its Standard Webhooks signature, and fails on command (5xx, a hang,
//     a connection reset, 410 Gone);
//   - [Check], which compares the ground truth with what the receiver got
//     and counts lost changes, duplicate events, redeliveries, spurious
//     events and bad signatures.
//
// RELIABILITY.md at the module root describes each scenario and carries
// the figures of the last run; `go test ./reliability -v -report
// RELIABILITY.md` refreshes them.
package reliability
