// Package cursor is pollhook's state store: one SQLite file that holds,
// per resource, the watermark and cycle counters, the version of every
// record seen, and the outbox of events waiting to be delivered.
//
// The store is written one transaction per fetched page ([SQLite.CommitPage])
// and one at the end of a complete cycle ([SQLite.FinishCycle]), so a crash
// or a stop at any point leaves it at a page boundary: nothing is lost and
// nothing is half-written.
//
// Tables (schema version 1):
//
//   - resources: one row per resource — resource (primary key), watermark,
//     cycle, completed, last_complete, held_deletes; from schema version 9
//     snapshot_cycle (the last complete snapshot cycle, whose misses the
//     next one confirms as deletes) and watch_from (when the watch began,
//     NULL until a cycle completed).
//   - seen: the last version recorded of each record — (resource, id)
//     primary key, updated, hash, last_seen (the cycle that last wrote
//     it, or, on PostgreSQL, last listed it). The snapshot delete scan
//     walks the primary key once per cycle (from schema version 4 there is
//     no index on last_seen: keeping one cost an index write per record
//     and cycle). From schema version 12, missed: the first complete
//     snapshot cycle that missed the record with no sighting since (0 for
//     none), indexed where set; on SQLite the records a cycle lists
//     unchanged are kept in TEMP tables of the writer connection until
//     its end, not written (sightings.go).
//   - outbox: detected events — seq (autoincrement, the delivery order),
//     id (unique: the same event is stored once), type, resource, source,
//     object, object_id, occurred_at, detected_at, data (JSON text);
//     indexed on (resource, seq).
//
// Delivery tables (schema version 2; deliveries.go has their columns):
//
//   - destinations: each destination's position in the outbox, and whether
//     a 410 Gone disabled it.
//   - deliveries: one row per (destination, event): pending, delivered or
//     dead, the attempts counted and when it is next due.
//   - attempts: the delivery log, every attempt with its status, latency,
//     error and the start of the response.
//
// Subscriptions (schema version 3; subscriptions.go has the columns): one
// row per REST Hooks subscription, Keap's and Pipedrive's alike — its key
// and integer id, event globs, URL, status, handshake secret and basic
// auth.
//
// Leases (schema version 7; lease.go): one owner per resource and per
// destination. History (schema version 8; history.go): the cycles as they
// ended, events per resource and hour, and backlog samples, for status
// views; pruned with the delivery log.
//
// Record history (schema version 11):
//
//   - seen_content: the last content of each record — resource, id
//     (unique together), data (JSON text). A table of its own, so that the
//     versions in seen stay small: a steady cycle reads and touches them
//     only, and a record's content is written when it changes and read
//     ([SQLite.Contents]) when it changed again or was deleted. A
//     tombstone has none.
//   - outbox gains previous (the record before the change, JSON; NULL when
//     unknown) and changed_fields (a JSON array of top-level keys; NULL
//     when unknown).
//
// Times are INTEGER Unix nanoseconds in UTC; 0 is the zero time (so the
// instant 1970-01-01T00:00:00Z reads back as the zero time), and times
// outside 1677-09-21..2262-04-11 are clamped to those bounds. The schema
// version is PRAGMA user_version; migrations run in order, in one
// transaction, when the file is opened. A file written by a newer pollhook
// is refused with [ErrSchemaTooNew].
//
// Beside the file, the directory <path>-holders holds one file per
// running process that registered its lease holder name
// ([SQLite.Register]), locked while it runs: a holder whose file is no
// longer locked has ended, and its leases are released at once.
//
// The file is opened in WAL mode with synchronous=NORMAL: a committed
// transaction survives a crash of the process; a power loss may undo the
// last few, which the next cycle redoes.
package cursor
