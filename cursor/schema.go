package cursor

// applicationID marks a SQLite file as a pollhook state store
// (PRAGMA application_id): "PHK1".
const applicationID = 0x50484b31

// migrations are the schema, one step per version: migrations[i] takes the
// file from version i to i+1. Steps are only ever appended; a released
// step is never edited.
var migrations = []string{
	// 1: resources, seen records, outbox.
	`
CREATE TABLE resources (
	resource      TEXT    NOT NULL PRIMARY KEY,
	watermark     INTEGER NOT NULL DEFAULT 0,
	cycle         INTEGER NOT NULL DEFAULT 0,
	completed     INTEGER NOT NULL DEFAULT 0,
	last_complete INTEGER NOT NULL DEFAULT 0,
	held_deletes  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE seen (
	resource  TEXT    NOT NULL REFERENCES resources (resource) ON DELETE CASCADE,
	id        TEXT    NOT NULL CHECK (id <> ''),
	updated   INTEGER NOT NULL DEFAULT 0,
	hash      TEXT    NOT NULL DEFAULT '',
	last_seen INTEGER NOT NULL,
	PRIMARY KEY (resource, id)
) WITHOUT ROWID;

CREATE INDEX seen_resource_last_seen ON seen (resource, last_seen);

CREATE TABLE outbox (
	seq         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	id          TEXT    NOT NULL UNIQUE CHECK (id <> ''),
	type        TEXT    NOT NULL,
	resource    TEXT    NOT NULL,
	source      TEXT    NOT NULL DEFAULT '',
	object      TEXT    NOT NULL DEFAULT '',
	object_id   TEXT    NOT NULL DEFAULT '',
	occurred_at INTEGER NOT NULL DEFAULT 0,
	detected_at INTEGER NOT NULL DEFAULT 0,
	data        TEXT    NOT NULL DEFAULT 'null'
);

CREATE INDEX outbox_resource_seq ON outbox (resource, seq);
`,
	// 2: destinations, deliveries, the attempt log.
	`
CREATE TABLE destinations (
	name            TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
	fanout_seq      INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL DEFAULT 0,
	disabled_at     INTEGER NOT NULL DEFAULT 0,
	disabled_reason TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE deliveries (
	destination TEXT    NOT NULL REFERENCES destinations (name) ON DELETE CASCADE,
	event_id    TEXT    NOT NULL CHECK (event_id <> ''),
	seq         INTEGER NOT NULL,
	type        TEXT    NOT NULL,
	status      TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL DEFAULT 0,
	done_at     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (destination, event_id)
) WITHOUT ROWID;

CREATE INDEX deliveries_due ON deliveries (destination, next_at) WHERE status = 'pending';
CREATE INDEX deliveries_pending_seq ON deliveries (destination, seq) WHERE status = 'pending';
CREATE INDEX deliveries_status_done ON deliveries (destination, status, done_at);

CREATE TABLE attempts (
	id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	destination TEXT    NOT NULL,
	event_id    TEXT    NOT NULL,
	body_id     TEXT    NOT NULL DEFAULT '',
	at          INTEGER NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	latency     INTEGER NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT '',
	response    TEXT    NOT NULL DEFAULT '',
	FOREIGN KEY (destination, event_id) REFERENCES deliveries (destination, event_id) ON DELETE CASCADE
);

CREATE INDEX attempts_delivery ON attempts (destination, event_id, id);
`,
	// 3: REST Hooks subscriptions.
	`
CREATE TABLE subscriptions (
	id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	key             TEXT    NOT NULL UNIQUE CHECK (key <> ''),
	dialect         TEXT    NOT NULL DEFAULT '',
	event_key       TEXT    NOT NULL DEFAULT '',
	event_action    TEXT    NOT NULL DEFAULT '',
	event_object    TEXT    NOT NULL DEFAULT '',
	url             TEXT    NOT NULL CHECK (url <> ''),
	status          TEXT    NOT NULL CHECK (status IN ('Unverified', 'Verified', 'Inactive')),
	secret          TEXT    NOT NULL DEFAULT '',
	http_user       TEXT    NOT NULL DEFAULT '',
	http_password   TEXT    NOT NULL DEFAULT '',
	name            TEXT    NOT NULL DEFAULT '',
	version         TEXT    NOT NULL DEFAULT '',
	user_id         INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL DEFAULT 0,
	updated_at      INTEGER NOT NULL DEFAULT 0,
	inactive_at     INTEGER NOT NULL DEFAULT 0,
	inactive_reason TEXT    NOT NULL DEFAULT ''
);
`,
	// 4: no index on last_seen. Touching every record of a snapshot
	// cycle rewrote an index entry per record; the delete scan at the end
	// of a cycle reads the resource's rows once instead.
	`
DROP INDEX seen_resource_last_seen;
`,
	// 5: revisions and tombstones. rev counts the events of a record, so
	// that a record changing back to an earlier content, or coming back
	// after a delete, gets a new event id; a deleted record is kept as a
	// tombstone (deleted = 1) to carry its rev.
	`
ALTER TABLE seen ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE seen ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
`,
	// 6: a row that readiness probes write, to show the store takes
	// writes.
	`
CREATE TABLE health (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);
`,
	// 7: leases. One owner per resource and per destination; every write
	// of their work checks the fence (lease.go).
	`
CREATE TABLE leases (
	name       TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
	holder     TEXT    NOT NULL DEFAULT '',
	expires_at INTEGER NOT NULL DEFAULT 0,
	fence      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`,
	// 8: history for status views (history.go): the cycles as they
	// ended, events per resource and hour, backlog samples; and a partial
	// index over dead deliveries, so that listing or counting them costs
	// the same however many were delivered.
	`
CREATE TABLE cycles (
	resource   TEXT    NOT NULL CHECK (resource <> ''),
	cycle      INTEGER NOT NULL CHECK (cycle > 0),
	started_at INTEGER NOT NULL DEFAULT 0,
	ended_at   INTEGER NOT NULL DEFAULT 0,
	pages      INTEGER NOT NULL DEFAULT 0,
	records    INTEGER NOT NULL DEFAULT 0,
	skipped    INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL DEFAULT 0,
	updated    INTEGER NOT NULL DEFAULT 0,
	deleted    INTEGER NOT NULL DEFAULT 0,
	held_back  INTEGER NOT NULL DEFAULT 0,
	known      INTEGER NOT NULL DEFAULT -1,
	watermark  INTEGER NOT NULL DEFAULT 0,
	silent     INTEGER NOT NULL DEFAULT 0,
	error      TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (resource, cycle)
) WITHOUT ROWID;

CREATE TABLE resource_hours (
	resource TEXT    NOT NULL,
	hour     INTEGER NOT NULL,
	cycles   INTEGER NOT NULL DEFAULT 0,
	failed   INTEGER NOT NULL DEFAULT 0,
	events   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (resource, hour)
) WITHOUT ROWID;

CREATE INDEX resource_hours_hour ON resource_hours (hour);

CREATE TABLE backlog_samples (
	destination    TEXT    NOT NULL REFERENCES destinations (name) ON DELETE CASCADE,
	at             INTEGER NOT NULL,
	pending        INTEGER NOT NULL DEFAULT 0,
	dead           INTEGER NOT NULL DEFAULT 0,
	oldest_pending INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (destination, at)
) WITHOUT ROWID;

CREATE INDEX backlog_samples_at ON backlog_samples (at);

CREATE INDEX deliveries_dead_seq ON deliveries (destination, seq) WHERE status = 'dead';
`,
	// 9: deletes confirmed before they are emitted, and the moment a
	// resource's watch began. snapshot_cycle is the number of the last
	// complete snapshot cycle: a record it missed, missed again by the
	// next one, is deleted. watch_from is when the first complete cycle
	// began to watch (NULL until one completed under this schema): a
	// record never seen that was created after it is new.
	`
ALTER TABLE resources ADD COLUMN snapshot_cycle INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN watch_from INTEGER;
`,
	// 10: the destinations deleted, and when: one that comes back (a
	// process whose config still names it, or the config again) starts
	// from its deletion or later, never from history already delivered.
	`
CREATE TABLE removed_destinations (
	name       TEXT    NOT NULL PRIMARY KEY,
	removed_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// 11: record history. seen_content keeps each record's last content,
	// apart from seen: a steady cycle reads and touches versions only,
	// and only a record that changed writes its content. A rowid table,
	// unlike seen: its rows are large, and a backfill appends them to the
	// table's end and their keys to a small index (WITHOUT ROWID cost a
	// backfill 18% more CPU than no content at all, this 13%). The outbox
	// carries what an event's formats need of the record's past: previous
	// (JSON, NULL when unknown) and changed_fields (a JSON array, NULL
	// when unknown).
	`
CREATE TABLE seen_content (
	resource TEXT NOT NULL,
	id       TEXT NOT NULL,
	data     TEXT NOT NULL,
	UNIQUE (resource, id)
);

ALTER TABLE outbox ADD COLUMN previous TEXT;
ALTER TABLE outbox ADD COLUMN changed_fields TEXT;
`,
	// 12: misses kept by record, sightings by cycle. A snapshot cycle
	// wrote last_seen for every record it listed, a write per record
	// and cycle that cost a steady cycle more than the rest of it. The
	// records a cycle lists unchanged are now kept in a TEMP table of the
	// writer connection (see transientSeen), outside the file, and a
	// complete snapshot cycle writes the records it missed instead:
	// missed is the first complete snapshot cycle that missed the record
	// without a sighting since (0: none), which the next complete one
	// confirms. transient_cycle is the cycle whose sightings are kept
	// that way, so that a cycle whose TEMP table was lost (a connection
	// replaced) fails instead of taking what it listed for missing. The
	// records the last complete snapshot missed carry its number, as
	// their last_seen said.
	`
ALTER TABLE seen ADD COLUMN missed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN transient_cycle INTEGER NOT NULL DEFAULT 0;
UPDATE seen SET missed = (SELECT r.snapshot_cycle FROM resources AS r WHERE r.resource = seen.resource)
WHERE deleted = 0 AND last_seen < (SELECT r.snapshot_cycle FROM resources AS r WHERE r.resource = seen.resource);
CREATE INDEX seen_missed ON seen (resource, id) WHERE missed <> 0;
`,
	// 13: two partial indexes where there were three indexes of every
	// pending delivery. Each of these took a write per event when it was
	// queued and another when it was delivered, at a place set by the
	// event's id (the last column of each entry), which a hash scatters:
	// deliveries_pending serves both the delivery loop (by seq) and the
	// next due time (next_at, read from the index), and deliveries_done
	// holds only the deliveries done, which are what prune looks for.
	// Queries that count or scan pending or dead deliveries bound seq
	// (seq > 0, true of every row) so that SQLite's planner takes the
	// partial index over the table.
	`
DROP INDEX deliveries_due;
DROP INDEX deliveries_pending_seq;
DROP INDEX deliveries_status_done;
CREATE INDEX deliveries_pending ON deliveries (destination, seq, next_at) WHERE status = 'pending';
CREATE INDEX deliveries_done ON deliveries (destination, status, done_at) WHERE status <> 'pending';
`,
}
