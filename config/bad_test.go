package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadConfigs(t *testing.T) {
	// Each file yields exactly these errors, in this order; each string is
	// the start of one error as the user reads it.
	tests := []struct {
		file string
		want []string
	}{
		{"auth_without_type.bad.yaml", []string{
			"auth_without_type.bad.yaml:5: sources[keap].auth.token: not used by auth type none (token goes with type bearer)",
		}},
		{"auth_wrong_fields.bad.yaml", []string{
			"auth_wrong_fields.bad.yaml:7: sources[keap].auth.token: not used by auth type basic (token goes with type bearer)",
		}},
		{"bad_attempts.bad.yaml", []string{
			"bad_attempts.bad.yaml:4: sources[keap].retry.attempts: want at least 1 attempt, the",
		}},
		{"bad_base_url.bad.yaml", []string{
			"bad_base_url.bad.yaml:3: sources[keap].base_url: want an absolute http(s) URL such",
		}},
		{"bad_batch.bad.yaml", []string{
			"bad_batch.bad.yaml:13: destinations[app].batch.max_events: want 1 to 1000 events a",
		}},
		{"bad_bool.bad.yaml", []string{
			`bad_bool.bad.yaml:13: destinations[app].tls.insecure_skip_verify: want true or false (got "yes")`,
		}},
		{"bad_byte_size.bad.yaml", []string{
			"bad_byte_size.bad.yaml:4: sources[keap].max_body_bytes: want a size such as 1048576,",
		}},
		{"bad_state.bad.yaml", []string{
			"bad_state.bad.yaml:3: state.dsn: state.path and state.dsn are both set: keep path for SQLite, or dsn for PostgreSQL",
			"bad_state.bad.yaml:4: state.lease: want at least 2s: a lease is renewed every third of it (got 1s)",
		}},
		{"bad_dsn.bad.yaml", []string{
			`bad_dsn.bad.yaml:2: state.dsn: want a PostgreSQL connection string such as postgres://pollhook@db:5432/pollhook?sslmode=disable, or host=db dbname=pollhook user=pollhook (got scheme "mysql")`,
		}},
		{"bad_cidr.bad.yaml", []string{
			"bad_cidr.bad.yaml:2: http.allow_targets[1]: want a CIDR such as 10.0.0.0/8",
			"bad_cidr.bad.yaml:2: http.allow_targets[2]: want a CIDR such as 10.0.0.0/8",
		}},
		{"bad_cron.bad.yaml", []string{
			`bad_cron.bad.yaml:10: resources[contacts].schedule: want a duration (5m), @every 30s or a cron line such as "*/5 * * * *" (got "*/5 * * *": expected exactly 5 fields`,
		}},
		{"bad_deletes.bad.yaml", []string{
			`bad_deletes.bad.yaml:10: resources[contacts].deletes: want none or snapshot (got "all")`,
		}},
		{"snapshot_positional.bad.yaml", []string{
			"snapshot_positional.bad.yaml:9: resources[contacts].deletes: deletes: snapshot with pagination page needs item_url: pages counted by position shift",
		}},
		{"item_url.bad.yaml", []string{
			"item_url.bad.yaml:8: resources[contacts].item_url: item_url is used by deletes: snapshot only",
			"item_url.bad.yaml:13: resources[deals].item_url: want a URL holding ${id} where a record's id goes, such as /contacts/${id} (got \"/deals/{id}\")",
			"item_url.bad.yaml:18: resources[leads].item_url: unknown placeholder ${epoch}: item_url takes ${id} only",
			"item_url.bad.yaml:23: resources[notes].item_record: item_record is set without item_url",
			`item_url.bad.yaml:28: resources[tasks].item_url: want a path such as /contacts/${id}, or an http(s) URL (got scheme "ftp")`,
			"item_url.bad.yaml:29: resources[tasks].item_record: invalid jq expression",
		}},
		{"bad_delivery_limits.bad.yaml", []string{
			`bad_delivery_limits.bad.yaml:13: destinations[app].ordering: want unordered or ordered (got "fifo")`,
			"bad_delivery_limits.bad.yaml:14: destinations[app].max_in_flight: want at least 1 (got 0)",
			"bad_delivery_limits.bad.yaml:15: destinations[app].timeout: want a duration above 0, such",
		}},
		{"bad_destination_url.bad.yaml", []string{
			"bad_destination_url.bad.yaml:12: destinations[app].url: want an http(s) URL, nats://host:port, stdout, or",
		}},
		{"nats.bad.yaml", []string{
			"nats.bad.yaml:10: destinations[no-subject].subject: subject is required for a NATS destination: a subject template such as pollhook.{resource}.{type}",
			`nats.bad.yaml:14: destinations[bad-subject].subject: token "x{type}" of "pollhook.{resource}.x{type}": a placeholder is a whole token between dots`,
			`nats.bad.yaml:17: destinations[unknown-placeholder].subject: unknown placeholder {record} in "pollhook.{record}"; want {resource}, {object}, {type}, {verb}, {source}`,
			`nats.bad.yaml:20: destinations[wildcard].subject: token ">" of "pollhook.>": a subject to publish on holds no wildcard (* or >)`,
			`nats.bad.yaml:23: destinations[dotted-source].subject: {source} would put the name of source "keap.v1" in the subject, and its "." would split a subject token`,
			`nats.bad.yaml:27: destinations[bad-stream].stream: want a stream name with no ".", "*", ">"`,
			"nats.bad.yaml:29: destinations[bad-url].url: server 2: empty; separate server URLs with single commas",
			`nats.bad.yaml:32: destinations[bad-port].url: want a port from 1 to 65535 (got "nats://127.0.0.1:99999")`,
			`nats.bad.yaml:35: destinations[path].url: a NATS server URL has no path or query`,
			"nats.bad.yaml:40: destinations[two-logins].nats: give one way to authenticate: nats.user and nats.password, nats.token, or nats.creds",
			"nats.bad.yaml:44: destinations[half-login].nats.password: nats.user needs nats.password",
			"nats.bad.yaml:46: destinations[url-login].url: the url holds credentials and so does nats; keep one of them",
			"nats.bad.yaml:52: destinations[basic].basic_auth: basic_auth is for http(s) destinations; a NATS server takes nats.user and nats.password",
			"nats.bad.yaml:55: destinations[http-subject].subject: only for a NATS destination (url: nats://host:port)",
			"nats.bad.yaml:56: destinations[http-subject].stream: only for a NATS destination",
			"nats.bad.yaml:57: destinations[http-subject].nats: only for a NATS destination",
			"nats.bad.yaml:60: destinations[half-cert].tls.key_file: tls.cert_file and tls.key_file go together",
			`nats.bad.yaml:69: destinations[second].stream: destination first publishes contact.updated into stream "SHARED" too; the stream keeps one message per event id (Nats-Msg-Id)`,
		}},
		{"bad_duration.bad.yaml", []string{
			`bad_duration.bad.yaml:9: resources[contacts].lookback: want a duration such as 30s, 5m or 1h30m (got "5 minutes")`,
		}},
		{"bad_env_reference.bad.yaml", []string{
			"bad_env_reference.bad.yaml:6: sources[keap].auth.token: bad variable reference ${KEAP TOKEN}: want",
		}},
		{"bad_event_glob.bad.yaml", []string{
			"bad_event_glob.bad.yaml:13: destinations[app].events[0]: want a glob over noun.verb such",
			"bad_event_glob.bad.yaml:13: destinations[app].events[1]: want a glob over noun.verb such",
		}},
		{"bad_event_names.bad.yaml", []string{
			"bad_event_names.bad.yaml:10: resources[contacts].event_names: want pollhook (object.created/updated/deleted) or keap (object.add/edit/delete)",
		}},
		{"bad_every.bad.yaml", []string{
			"bad_every.bad.yaml:10: resources[contacts].schedule: want @every and a duration such",
		}},
		{"bad_format.bad.yaml", []string{
			`bad_format.bad.yaml:13: destinations[app].format: unknown format "cloudevent"; want one of pollhook, cloudevents, keap, cloud-elements; did you mean cloudevents?`,
		}},
		{"bad_header_name.bad.yaml", []string{
			"bad_header_name.bad.yaml:5: sources[keap].headers.X Tenant: want a header name",
		}},
		{"bad_history.bad.yaml", []string{
			`bad_history.bad.yaml:9: resources[contacts].transform: invalid jq expression: unexpected EOF (got "{id, email: .email | ascii_downcase")`,
			`bad_history.bad.yaml:10: resources[contacts].ignore_fields[1]: not a path expression: invalid path against: string ("null"); want a path such as`,
			`bad_history.bad.yaml:10: resources[contacts].ignore_fields[2]: invalid jq expression: unexpected EOF (got ".tags[")`,
			"bad_history.bad.yaml:10: resources[contacts].ignore_fields[3]: want the path of a field",
			"bad_history.bad.yaml:16: resources[deals].watch_fields: set ignore_fields or watch_fields, not both",
			`bad_history.bad.yaml:17: resources[deals].keep_content: want true or false (got "maybe")`,
			`bad_history.bad.yaml:21: destinations[app].filter: invalid jq expression: unexpected EOF`,
			"bad_history.bad.yaml:24: destinations[other].filter: invalid jq expression: function not defined: undefined_thing/0",
		}},
		{"bad_id_field.bad.yaml", []string{
			"bad_id_field.bad.yaml:10: resources[contacts].id_field: want a dotted path such as",
		}},
		{"bad_indentation.bad.yaml", []string{
			"bad_indentation.bad.yaml:7: invalid YAML: did not find expected '-' indicator",
		}},
		// A tab in the indentation is reported at its own line (yaml.v3
		// names the line above), and says what to do.
		{"tab_in_item.bad.yaml", []string{
			"tab_in_item.bad.yaml:6: invalid YAML: a tab in the indentation (column 1); indent with spaces",
		}},
		{"tab_after_spaces.bad.yaml", []string{
			"tab_after_spaces.bad.yaml:7: invalid YAML: a tab in the indentation (column 3); indent with spaces",
		}},
		{"tab_starts_item.bad.yaml", []string{
			"tab_starts_item.bad.yaml:5: invalid YAML: a tab in the indentation (column 1); indent with spaces",
		}},
		{"bad_jq.bad.yaml", []string{
			`bad_jq.bad.yaml:10: resources[contacts].items: invalid jq expression: unexpected EOF (got ".data[")`,
		}},
		{"bad_listen.bad.yaml", []string{
			`bad_listen.bad.yaml:2: http.listen: want host:port such as 127.0.0.1:8080 or :8080 (got "8080")`,
		}},
		{"bad_name.bad.yaml", []string{
			"bad_name.bad.yaml:2: sources[0].name: want a name of letters, digits,",
		}},
		{"bad_object.bad.yaml", []string{
			"bad_object.bad.yaml:7: resources[contacts].object: want lowercase letters, digits and _,",
		}},
		{"bad_page_limit.bad.yaml", []string{
			"bad_page_limit.bad.yaml:10: resources[contacts].pagination.limit: want a page size above 0,",
			"bad_page_limit.bad.yaml:10: resources[contacts].pagination.max_pages: want at least 1 (got 0)",
		}},
		{"bad_pagination_type.bad.yaml", []string{
			`bad_pagination_type.bad.yaml:10: resources[contacts].pagination.type: unknown pagination type "offest"; want one of none, offset, page, cursor, next_url, link_header; did you mean offset?`,
		}},
		{"bad_placeholder_format.bad.yaml", []string{
			"bad_placeholder_format.bad.yaml:8: resources[contacts].url: ${date:yyyy-QQ}: unknown pattern letter 'Q' (got",
		}},
		{"bad_rate_limit.bad.yaml", []string{
			"bad_rate_limit.bad.yaml:4: sources[keap].rate_limit.per_second: want requests per second above 0,",
			"bad_rate_limit.bad.yaml:4: sources[keap].rate_limit.burst: want a burst of at least",
		}},
		{"bad_resource_url.bad.yaml", []string{
			"bad_resource_url.bad.yaml:8: resources[contacts].url: want a path such as /contacts,",
		}},
		{"bad_secret_base64.bad.yaml", []string{
			"bad_secret_base64.bad.yaml:13: destinations[app].secret: the part after whsec_ is not base64",
		}},
		{"bad_secret_prefix.bad.yaml", []string{
			"bad_secret_prefix.bad.yaml:13: destinations[app].secret: the secret does not start with whsec_; Standard Webhooks keys are whsec_ followed by base64",
		}},
		{"bad_start.bad.yaml", []string{
			"bad_start.bad.yaml:10: resources[contacts].start: want now, beginning or an RFC",
		}},
		{"bad_timezone.bad.yaml", []string{
			`bad_timezone.bad.yaml:13: resources[contacts].dates.updated_timezone: load time zone "Mars/Olympus": want an`,
		}},
		{"cursor_without_next_cursor.bad.yaml", []string{
			"cursor_without_next_cursor.bad.yaml:10: resources[contacts].pagination.next_cursor: pagination type cursor needs next_cursor: a",
		}},
		{"delete_guard_range.bad.yaml", []string{
			"delete_guard_range.bad.yaml:11: resources[contacts].delete_guard: want a share of known ids",
		}},
		// deletes: none emits no deletes: asking only for them is an
		// error, as any glob that matches nothing is.
		{"deletes_not_detected.bad.yaml", []string{
			`deletes_not_detected.bad.yaml:18: destinations[contacts-gone].events[1]: "contact.deleted" matches no event of the configured resources (they produce contact.created, contact.updated, deal.created, deal.updated, deal.deleted); a delete is detected only with deletes: snapshot on the resource`,
		}},
		{"only_deletes_none.bad.yaml", []string{
			`only_deletes_none.bad.yaml:12: destinations[deletes-only].events[0]: "*.deleted" matches no event of the configured resources (they produce contact.created, contact.updated); a delete is detected only with deletes: snapshot on the resource`,
		}},
		{"duplicate_destination.bad.yaml", []string{
			`duplicate_destination.bad.yaml:13: destinations[app].name: name "app" is already used by destinations[0] at line 11`,
		}},
		{"duplicate_key.bad.yaml", []string{
			"duplicate_key.bad.yaml:8: resources[contacts].object: key written twice (first at line 7)",
		}},
		{"duplicate_resource.bad.yaml", []string{
			`duplicate_resource.bad.yaml:10: resources[contacts].name: name "contacts" is already used by resources[0] at line 5`,
		}},
		{"duplicate_source.bad.yaml", []string{
			`duplicate_source.bad.yaml:4: sources[keap].name: name "keap" is already used by sources[0] at line 2`,
		}},
		{"empty.bad.yaml", []string{
			"empty.bad.yaml:1: the file holds no config; a minimal config is:\n  sources:\n    - name: api\n      base_url: https://api.example.com\n  resources:",
		}},
		{"empty_retry_schedule.bad.yaml", []string{
			"empty_retry_schedule.bad.yaml:14: destinations[app].retry.schedule: want at least one wait, such",
		}},
		{"epoch_with_format.bad.yaml", []string{
			`epoch_with_format.bad.yaml:8: resources[contacts].url: ${epoch} takes no format (got "${epoch:ms}")`,
		}},
		{"events_match_nothing.bad.yaml", []string{
			`events_match_nothing.bad.yaml:13: destinations[app].events[1]: "deal.*" matches no event of the configured resources (they produce contact.created, contact.updated)`,
		}},
		{"field_without_format.bad.yaml", []string{
			"field_without_format.bad.yaml:10: resources[contacts].dates.created_format: created_field is set but created_format is",
		}},
		{"flow_env_unquoted.bad.yaml", []string{
			`flow_env_unquoted.bad.yaml:4: invalid YAML: did not find expected ',' or '}'; inside { } or [ ] a value holding ${…} must be quoted`,
		}},
		{"format_without_field.bad.yaml", []string{
			"format_without_field.bad.yaml:10: resources[contacts].dates.updated_field: updated_format is set but updated_field is",
		}},
		{"keap_events_match_nothing.bad.yaml", []string{
			`keap_events_match_nothing.bad.yaml:14: destinations[app].events[0]: "contact.created" matches no event of the configured resources (they produce contact.add, contact.edit)`,
		}},
		{"missing_env.bad.yaml", []string{
			"missing_env.bad.yaml:4: sources[keap].auth.token: environment variable NOPE_TOKEN is not set (write ${NOPE_TOKEN:-default} for a default)",
		}},
		{"missing_name.bad.yaml", []string{
			"missing_name.bad.yaml:11: destinations[0].name: name is required",
		}},
		{"missing_object.bad.yaml", []string{
			"missing_object.bad.yaml:5: resources[contacts].object: object is required: the noun of",
		}},
		{"missing_source_ref.bad.yaml", []string{
			`missing_source_ref.bad.yaml:6: resources[contacts].source: no source named "kaep"; defined: keap; did you mean keap?`,
		}},
		{"missing_token.bad.yaml", []string{
			"missing_token.bad.yaml:4: sources[keap].auth.token: required by auth type bearer",
		}},
		{"missing_url.bad.yaml", []string{
			"missing_url.bad.yaml:5: resources[contacts].url: url is required: a path under",
		}},
		{"misspelt_nested_key.bad.yaml", []string{
			"misspelt_nested_key.bad.yaml:11: resources[contacts].dates.updated_fild: unknown key; did you mean updated_field?",
		}},
		{"negative_duration.bad.yaml", []string{
			`negative_duration.bad.yaml:4: sources[keap].timeout: want a positive duration (got "-5s")`,
		}},
		{"next_url_without_next_url.bad.yaml", []string{
			"next_url_without_next_url.bad.yaml:10: resources[contacts].pagination.next_url: pagination type next_url needs next_url: a",
		}},
		{"no_resources.bad.yaml", []string{
			"no_resources.bad.yaml:1: resources: at least one resource is required,",
		}},
		{"no_sources.bad.yaml", []string{
			"no_sources.bad.yaml:1: sources: at least one source is required,",
		}},
		{"not_mapping.bad.yaml", []string{
			"not_mapping.bad.yaml:1: want a mapping of keys such as sources: and resources: at the top of the file (got a list); a minimal config is:",
		}},
		{"oauth2_missing_fields.bad.yaml", []string{
			"oauth2_missing_fields.bad.yaml:4: sources[keap].auth.client_secret: required by auth type oauth2",
			"oauth2_missing_fields.bad.yaml:6: sources[keap].auth.token_url: want an absolute http(s) URL such",
		}},
		{"pagination_key_of_other_type.bad.yaml", []string{
			"pagination_key_of_other_type.bad.yaml:12: resources[contacts].pagination.next_cursor: next_cursor is used only by pagination",
		}},
		{"relative_file_url.bad.yaml", []string{
			"relative_file_url.bad.yaml:12: destinations[app].url: want file:///absolute/path, with three slashes (got",
		}},
		{"scalar_for_list.bad.yaml", []string{
			"scalar_for_list.bad.yaml:13: destinations[app].events: want a list (got a single value); write [value] for a list of one",
		}},
		{"snapshot_with_since.bad.yaml", []string{
			"snapshot_with_since.bad.yaml:9: resources[contacts].deletes: deletes: snapshot needs every record each cycle, but url asks only for changes",
		}},
		{"sources_not_list.bad.yaml", []string{
			`sources_not_list.bad.yaml:2: sources: want a list (got a mapping); start each item with "- "`,
		}},
		{"start_time_without_updated_field.bad.yaml", []string{
			`start_time_without_updated_field.bad.yaml:10: resources[contacts].start: a start time needs dates.updated_field (and dates.updated_format), to tell the records changed after it from the others; set them, or use start: now or start: beginning (got "2024-01-31T00:00:00Z")`,
		}},
		{"syntax_error.bad.yaml", []string{
			"syntax_error.bad.yaml:8: invalid YAML: did not find expected ',' or ']'",
		}},
		{"three_mistakes.bad.yaml", []string{
			"three_mistakes.bad.yaml:4: sources[keap].timeout: want a duration such as 30s,",
			"three_mistakes.bad.yaml:10: resources[contacts].lookbak: unknown key; did you mean lookback?",
			`three_mistakes.bad.yaml:14: destinations[app].format: unknown format "json"; want one of`,
		}},
		{"two_documents.bad.yaml", []string{
			"two_documents.bad.yaml:13: a config file holds one YAML document",
		}},
		{"undefined_jq_function.bad.yaml", []string{
			`undefined_jq_function.bad.yaml:10: resources[contacts].items: invalid jq expression: function not defined: flaten/0 (got ".data | flaten")`,
		}},
		{"unknown_auth_type.bad.yaml", []string{
			`unknown_auth_type.bad.yaml:4: sources[keap].auth.type: unknown auth type "beare"; want one of none, bearer, basic, header, query, oauth2; did you mean bearer?`,
		}},
		{"unknown_date_letter.bad.yaml", []string{
			`unknown_date_letter.bad.yaml:12: resources[contacts].dates.updated_format: unknown pattern letter 'Q' (got "yyyy-QQ")`,
		}},
		{"unknown_key.bad.yaml", []string{
			"unknown_key.bad.yaml:10: destination: unknown key; did you mean destinations?",
		}},
		{"unknown_key_list.bad.yaml", []string{
			"unknown_key_list.bad.yaml:4: sources[keap].frobnicate: unknown key; valid keys here are name, base_url, auth, headers, timeout, rate_limit, retry, max_body_bytes",
		}},
		{"unknown_placeholder.bad.yaml", []string{
			"unknown_placeholder.bad.yaml:8: resources[contacts].url: unknown placeholder ${gmtdate:yyyy-MM-dd}: want one of",
		}},
		{"unterminated_quote.bad.yaml", []string{
			`unterminated_quote.bad.yaml:12: resources[contacts].dates.updated_format: unterminated quote (got "yyyy-MM-dd'T"): close quoted`,
		}},
		{"wrong_type_int.bad.yaml", []string{
			`wrong_type_int.bad.yaml:10: resources[contacts].pagination.limit: want a whole number (got "abc")`,
		}},
		{"wrong_type_list_for_map.bad.yaml", []string{
			"wrong_type_list_for_map.bad.yaml:4: sources[keap].auth: want a mapping of type, token, username, password, name, value, token_url, client_id, client_secret, scopes (got a list)",
		}},
		{"zero_retry_wait.bad.yaml", []string{
			"zero_retry_wait.bad.yaml:14: destinations[app].retry.schedule[1]: want a wait above 0, such",
		}},
	}
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tt := range tests {
		listed[tt.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no entry in TestBadConfigs", f)
		}
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := load(t, tt.file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if c != nil {
				t.Error("a config came back with the errors")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if i < len(errs) && !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d:\n got  %s\n want %s…", i, errs[i], w)
				}
			}
		})
	}
}
