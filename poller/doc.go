// Package poller polls upstream APIs: HTTP fetch with auth, rate limits and
// retries, pagination, record extraction with jq, the diff against the
// store, and the scheduler.
package poller
