package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// badConfig is what `pollhook check` must say of a bad config: the line
// and the key (or, for a file that is not YAML at all, the start of the
// message).
type badConfig struct {
	line int
	key  string
}

// badConfigs are the expectations for config/testdata/*.bad.yaml and
// reliability/testdata/badconfig/*.bad.yaml. A file missing here (one
// added later) must still give exit 2 and a file:line: message.
var badConfigs = map[string]badConfig{
	"auth_without_type.bad.yaml":            {5, "sources[keap].auth.token:"},
	"auth_wrong_fields.bad.yaml":            {7, "sources[keap].auth.token:"},
	"bad_attempts.bad.yaml":                 {4, "sources[keap].retry.attempts:"},
	"bad_base_url.bad.yaml":                 {3, "sources[keap].base_url:"},
	"bad_batch.bad.yaml":                    {13, "destinations[app].batch.max_events:"},
	"bad_bool.bad.yaml":                     {13, "destinations[app].tls.insecure_skip_verify:"},
	"bad_byte_size.bad.yaml":                {4, "sources[keap].max_body_bytes:"},
	"bad_cidr.bad.yaml":                     {2, "http.allow_targets[1]:"},
	"bad_cron.bad.yaml":                     {10, "resources[contacts].schedule:"},
	"bad_deletes.bad.yaml":                  {10, "resources[contacts].deletes:"},
	"bad_delivery_limits.bad.yaml":          {13, "destinations[app].ordering:"},
	"bad_destination_url.bad.yaml":          {12, "destinations[app].url:"},
	"bad_duration.bad.yaml":                 {9, "resources[contacts].lookback:"},
	"bad_env_reference.bad.yaml":            {6, "sources[keap].auth.token:"},
	"bad_event_glob.bad.yaml":               {13, "destinations[app].events[0]:"},
	"bad_event_names.bad.yaml":              {10, "resources[contacts].event_names:"},
	"bad_every.bad.yaml":                    {10, "resources[contacts].schedule:"},
	"bad_format.bad.yaml":                   {13, "destinations[app].format:"},
	"bad_header_name.bad.yaml":              {5, "sources[keap].headers.X Tenant:"},
	"bad_history.bad.yaml":                  {9, "resources[contacts].transform:"},
	"bad_id_field.bad.yaml":                 {10, "resources[contacts].id_field:"},
	"bad_indentation.bad.yaml":              {7, "invalid YAML:"},
	"bad_jq.bad.yaml":                       {10, "resources[contacts].items:"},
	"bad_listen.bad.yaml":                   {2, "http.listen:"},
	"bad_name.bad.yaml":                     {2, "sources[0].name:"},
	"bad_object.bad.yaml":                   {7, "resources[contacts].object:"},
	"bad_page_limit.bad.yaml":               {10, "resources[contacts].pagination.limit:"},
	"bad_pagination_type.bad.yaml":          {10, "resources[contacts].pagination.type:"},
	"bad_placeholder_format.bad.yaml":       {8, "resources[contacts].url:"},
	"bad_rate_limit.bad.yaml":               {4, "sources[keap].rate_limit.per_second:"},
	"bad_resource_url.bad.yaml":             {8, "resources[contacts].url:"},
	"bad_secret_base64.bad.yaml":            {13, "destinations[app].secret:"},
	"bad_secret_prefix.bad.yaml":            {13, "destinations[app].secret:"},
	"bad_start.bad.yaml":                    {10, "resources[contacts].start:"},
	"bad_timezone.bad.yaml":                 {13, "resources[contacts].dates.updated_timezone:"},
	"cursor_without_next_cursor.bad.yaml":   {10, "resources[contacts].pagination.next_cursor:"},
	"delete_guard_range.bad.yaml":           {11, "resources[contacts].delete_guard:"},
	"duplicate_destination.bad.yaml":        {13, "destinations[app].name:"},
	"duplicate_key.bad.yaml":                {8, "resources[contacts].object:"},
	"duplicate_resource.bad.yaml":           {10, "resources[contacts].name:"},
	"duplicate_source.bad.yaml":             {4, "sources[keap].name:"},
	"empty.bad.yaml":                        {1, "the file holds no config"},
	"empty_retry_schedule.bad.yaml":         {14, "destinations[app].retry.schedule:"},
	"epoch_with_format.bad.yaml":            {8, "resources[contacts].url:"},
	"events_match_nothing.bad.yaml":         {13, "destinations[app].events[1]:"},
	"field_without_format.bad.yaml":         {10, "resources[contacts].dates.created_format:"},
	"flow_env_unquoted.bad.yaml":            {4, "invalid YAML:"},
	"format_without_field.bad.yaml":         {10, "resources[contacts].dates.updated_field:"},
	"keap_events_match_nothing.bad.yaml":    {14, "destinations[app].events[0]:"},
	"missing_env.bad.yaml":                  {4, "sources[keap].auth.token:"},
	"missing_name.bad.yaml":                 {11, "destinations[0].name:"},
	"missing_object.bad.yaml":               {5, "resources[contacts].object:"},
	"missing_source_ref.bad.yaml":           {6, "resources[contacts].source:"},
	"missing_token.bad.yaml":                {4, "sources[keap].auth.token:"},
	"missing_url.bad.yaml":                  {5, "resources[contacts].url:"},
	"misspelt_nested_key.bad.yaml":          {11, "resources[contacts].dates.updated_fild:"},
	"negative_duration.bad.yaml":            {4, "sources[keap].timeout:"},
	"next_url_without_next_url.bad.yaml":    {10, "resources[contacts].pagination.next_url:"},
	"no_resources.bad.yaml":                 {1, "resources:"},
	"no_sources.bad.yaml":                   {1, "sources:"},
	"not_mapping.bad.yaml":                  {1, "want a mapping of keys"},
	"oauth2_missing_fields.bad.yaml":        {4, "sources[keap].auth.client_secret:"},
	"pagination_key_of_other_type.bad.yaml": {12, "resources[contacts].pagination.next_cursor:"},
	"relative_file_url.bad.yaml":            {12, "destinations[app].url:"},
	"scalar_for_list.bad.yaml":              {13, "destinations[app].events:"},
	"snapshot_with_since.bad.yaml":          {9, "resources[contacts].deletes:"},
	"sources_not_list.bad.yaml":             {2, "sources:"},
	"syntax_error.bad.yaml":                 {8, "invalid YAML:"},
	"three_mistakes.bad.yaml":               {4, "sources[keap].timeout:"},
	"two_documents.bad.yaml":                {13, "a config file holds one YAML document"},
	"undefined_jq_function.bad.yaml":        {10, "resources[contacts].items:"},
	"unknown_auth_type.bad.yaml":            {4, "sources[keap].auth.type:"},
	"unknown_date_letter.bad.yaml":          {12, "resources[contacts].dates.updated_format:"},
	"unknown_key.bad.yaml":                  {10, "destination:"},
	"unknown_key_list.bad.yaml":             {4, "sources[keap].frobnicate:"},
	"unknown_placeholder.bad.yaml":          {8, "resources[contacts].url:"},
	"unterminated_quote.bad.yaml":           {12, "resources[contacts].dates.updated_format:"},
	"wrong_type_int.bad.yaml":               {10, "resources[contacts].pagination.limit:"},
	"wrong_type_list_for_map.bad.yaml":      {4, "sources[keap].auth:"},
	"zero_retry_wait.bad.yaml":              {14, "destinations[app].retry.schedule[1]:"},

	// reliability/testdata/badconfig
	"alias_bomb.bad.yaml":                 {8, "sources[0]:"},
	"bad_max_body_unit.bad.yaml":          {4, "sources[api].max_body_bytes:"},
	"batch_max_wait_word.bad.yaml":        {11, "destinations[app].batch.max_wait:"},
	"binary_garbage.bad.yaml":             {4, "invalid YAML: control characters"},
	"burst_negative.bad.yaml":             {4, "sources[api].rate_limit.burst:"},
	"created_tolerance_word.bad.yaml":     {8, "resources[things].created_tolerance:"},
	"delete_guard_word.bad.yaml":          {9, "resources[things].delete_guard:"},
	"destination_url_ftp.bad.yaml":        {10, "destinations[app].url:"},
	"env_unterminated.bad.yaml":           {3, "sources[api].base_url:"},
	"events_empty_list.bad.yaml":          {11, "destinations[app].events:"},
	"filter_bad_jq.bad.yaml":              {8, "resources[things].filter:"},
	"headers_list.bad.yaml":               {4, "sources[api].headers:"},
	"http_token_list.bad.yaml":            {3, "http.token:"},
	"max_in_flight_huge_word.bad.yaml":    {11, "destinations[app].max_in_flight:"},
	"negative_lookback.bad.yaml":          {8, "resources[things].lookback:"},
	"negative_page_limit.bad.yaml":        {8, "resources[things].pagination.limit:"},
	"next_cursor_bad_jq.bad.yaml":         {8, "resources[things].pagination.next_cursor:"},
	"object_missing_url_both.bad.yaml":    {5, "resources[things].url:"},
	"ordering_word.bad.yaml":              {11, "destinations[app].ordering:"},
	"pagination_first_page_word.bad.yaml": {8, "resources[things].pagination.first_page:"},
	"resource_name_spaces.bad.yaml":       {5, "resources[0].name:"},
	"retry_schedule_word.bad.yaml":        {11, "destinations[app].retry.schedule[1]:"},
	"schedule_too_short.bad.yaml":         {8, "resources[things].schedule:"},
	"schedule_tz_without_cron.bad.yaml":   {8, "resources[things].schedule:"},
	"schedule_cron_tz_only.bad.yaml":      {8, "resources[things].schedule:"},
	"source_timeout_zero.bad.yaml":        {4, "sources[api].timeout:"},
	"start_bad_date.bad.yaml":             {8, "resources[things].start:"},
	"state_misspelt.bad.yaml":             {2, "state.pth:"},
	"tab_indent.bad.yaml":                 {2, "invalid YAML:"},
	"tls_unknown_key.bad.yaml":            {11, "destinations[app].tls.verify:"},
	"updated_timezone_bad.bad.yaml":       {8, "resources[things].dates.updated_timezone:"},
}

// anyKeyMessage is what a message of a file missing from badConfigs must
// look like: file:line: then a key path or a YAML-level complaint.
var anyKeyMessage = regexp.MustCompile(`^pollhook: [^:]+\.bad\.yaml:\d+: ([a-z_]+(\[[^\]]*\])?(\.[^:\s]+)*:|invalid YAML|the file|want a mapping|a config file)`)

// TestBadConfigs runs `pollhook check` on every bad config: each exits 2
// with a message that names the file, the line and the key.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	needBinary(t)
	fig := newFigures(t, "5. bad input: invalid configs")
	fig.TrialsOf = "configs"
	var files []string
	for _, pattern := range []string{"../config/testdata/*.bad.yaml", "testdata/badconfig/*.bad.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 40 {
		t.Fatalf("only %d bad configs found", len(files))
	}
	// The variables config's own tests load the files with; NOPE_TOKEN
	// stays unset.
	env := []string{"KEAP_TOKEN=tok-keap", "POLLHOOK_TOKEN=tok-pollhook", "WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"CRM_SECRET=crm", "BILLING_KEY=bk", "EMPTY=", "NOPE_TOKEN"}
	os.Unsetenv("NOPE_TOKEN")
	passed := 0
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			want, known := badConfigs[name]
			begin := time.Now()
			_, errOut, code := cli(t, env[:len(env)-1], "check", "-c", file)
			if took := time.Since(begin); took > 5*time.Second {
				t.Errorf("check took %s", took)
			}
			if strings.Contains(errOut, "panic:") || strings.Contains(errOut, "goroutine ") {
				t.Fatalf("check panicked:\n%s", errOut)
			}
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, errOut)
			}
			first := strings.SplitN(errOut, "\n", 2)[0]
			if !known {
				if !anyKeyMessage.MatchString(first) {
					t.Errorf("message %q names no file, line and key", first)
				}
				passed++
				return
			}
			if prefix := fmt.Sprintf("pollhook: %s:%d: %s", file, want.line, want.key); !strings.Contains(errOut, fmt.Sprintf("%s:%d: %s", file, want.line, want.key)) {
				t.Errorf("stderr does not hold %q:\n%s", prefix, errOut)
				return
			}
			passed++
		})
	}
	fig.Trials = len(files)
	fig.Note = fmt.Sprintf("%d of %d exit 2 naming file:line and key (%d files from config/testdata, %d from reliability/testdata/badconfig)",
		passed, len(files), countPrefix(files, "../config/"), countPrefix(files, "testdata/"))
}

func countPrefix(files []string, prefix string) int {
	n := 0
	for _, f := range files {
		if strings.HasPrefix(f, prefix) {
			n++
		}
	}
	return n
}

// TestGarbageBodies answers every listing request with a body that is
// not the API's: each fails the cycle or is skipped record by record,
// emits nothing, and the daemon goes on; afterwards nothing is lost.
func TestGarbageBodies(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "5. bad input: garbage upstream bodies")
	fig.TrialsOf = "bodies"
	rng := rand.New(rand.NewPCG(12, 13))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	item := func(s string) string {
		return `{"items":[` + s + `],"total":1,"next":null}`
	}
	const dates = `"created":"2026-01-01T00:00:00.000Z","updated":"2026-01-01T00:00:00.000Z"`
	cases := []struct {
		name string
		body string
		// fails says the cycles fail; otherwise a cycle may fail (on the
		// filter of inc, say) or pass with its records skipped (or none),
		// and then snap's guard holds the deletes back.
		fails bool
	}{
		{"random bytes", string(random), true},
		{"NUL bytes", string(make([]byte, 1000)), true},
		{"empty body", "", true},
		{"JSON string", `"hello"`, true},
		{"items not an array", `{"items":{"id":1}}`, true},
		{"no items key", `{"data":[]}`, true},
		{"nested 100,000 deep", strings.Repeat("[", 100000), true},
		{"two JSON values", `{"items":[]} {"items":[]}`, true},
		{"JSON null", `null`, false},
		{"items of numbers", `{"items":[1,2,3]}`, false},
		{"record without id", item(`{"name":"x",` + dates + `}`), false},
		{"id an object", item(`{"id":{"a":1},` + dates + `}`), false},
		{"5 MB record without dates", item(`{"id":1,"name":"` + strings.Repeat("z", 5<<20) + `"}`), false},
	}
	w := newWorld(t, UpstreamOptions{Seed: 14, RealTime: true, Initial: 60})
	cfg := w.config(setup{})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)
	events := func() int { return len(w.rcv.Deliveries()) }
	resourceOf := map[string]string{"/a/items": "inc", "/b/items": "snap"}
	for _, c := range cases {
		before := events()
		w.up.SetFault(FaultSpec{Kind: FaultGarbage, Body: []byte(c.body)})
		// The cycle judged is each resource's first to ask for the
		// body: base holds the metrics as it asked, before its outcome
		// (a cycle that read its page before the fault may end after
		// the fault is set, and well).
		var (
			mu      sync.Mutex
			base    = map[string]map[string]float64{}
			baseErr error
		)
		w.up.SetHook(func(l ListRequest) {
			mu.Lock()
			defer mu.Unlock()
			if r := resourceOf[l.Path]; base[r] == nil && baseErr == nil {
				base[r], baseErr = p.readMetrics()
			}
		})
		cycled := func(m map[string]float64, r string) (asked, failed, ok bool) {
			mu.Lock()
			defer mu.Unlock()
			if baseErr != nil {
				t.Fatalf("%s: %v", c.name, baseErr)
			}
			b := base[r]
			e := series("pollhook_polls_total", "resource", r, "outcome", "error")
			o := series("pollhook_polls_total", "resource", r, "outcome", "ok")
			return b != nil, b != nil && m[e] > b[e], b != nil && m[o] > b[o]
		}
		heldBack := func(m map[string]float64) bool {
			return m[series("pollhook_deletes_held_back", "resource", "snap")] > 0
		}
		waitUntil(t, 20*time.Second, c.name+" to be read by both resources", func() bool {
			m := p.metrics()
			for _, r := range []string{"inc", "snap"} {
				asked, failed, ok := cycled(m, r)
				if !asked {
					return false
				}
				// The held-back gauge is set just after the ok count.
				if !failed && (!ok || r == "snap" && !heldBack(m)) {
					return false
				}
			}
			return true
		})
		m := p.metrics()
		for _, r := range []string{"inc", "snap"} {
			_, failed, _ := cycled(m, r)
			switch {
			case c.fails && !failed:
				t.Errorf("%s: a cycle of %s passed", c.name, r)
			case !failed && r == "snap" && !heldBack(m):
				t.Errorf("%s: snap's cycle passed without holding back the deletes", c.name)
			}
		}
		w.up.ClearFaults()
		w.up.SetHook(nil)
		if !p.running() {
			t.Fatalf("%s: pollhook exited: %v\n%s", c.name, p.err, p.tail())
		}
		// A good cycle ends the failure streak (and its growing backoff)
		// and the guard's hold.
		after := p.metrics()
		waitUntil(t, 20*time.Second, "a good cycle after "+c.name, func() bool {
			m := p.metrics()
			for _, r := range []string{"inc", "snap"} {
				key := series("pollhook_polls_total", "resource", r, "outcome", "ok")
				if m[key] <= after[key] {
					return false
				}
			}
			return m[series("pollhook_deletes_held_back", "resource", "snap")] == 0
		})
		if n := events() - before; n > 0 {
			t.Errorf("%s: %d deliveries came of a garbage body", c.name, n)
		}
		fig.Trials++
	}
	m := p.metrics()
	skipped := m[series("pollhook_records_skipped_total", "resource", "inc")] + m[series("pollhook_records_skipped_total", "resource", "snap")]
	if skipped == 0 {
		t.Error("pollhook_records_skipped_total counted none of the records without a usable id or date")
	}
	w.up.Step()
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	fig.Faults = w.up.Stats().FaultsInjected()
	fig.Note = fmt.Sprintf("%g records skipped and counted; no event from any body", skipped)
}

// TestOversizedBody streams a 100 MB listing in chunks (no
// Content-Length), never held whole by the test: the cycle fails at
// max_body_bytes (64 MiB by default) and pollhook's peak memory stays
// under 200 MiB.
func TestOversizedBody(t *testing.T) {
	t.Parallel()
	hwm, fig := hugeBody(t, "5. bad input: 100 MB upstream body, chunked", []string{"snap"}, true)
	t.Logf("peak RSS %d MiB", hwm>>20)
	if limit := int64(200 << 20); hwm > limit {
		fig.Note += fmt.Sprintf(": over the %d MiB bound", limit>>20)
		t.Errorf("peak RSS %d MiB reading a 100 MB body, want under %d MiB", hwm>>20, limit>>20)
	}
}

// TestOversizedContentLength serves two resources at once a 100 MB listing
// whose Content-Length says so: pollhook refuses it before reading, so its
// peak memory stays far below max_body_bytes.
func TestOversizedContentLength(t *testing.T) {
	t.Parallel()
	hwm, _ := hugeBody(t, "5. bad input: 100 MB upstream body, Content-Length", []string{"inc", "snap"}, false)
	t.Logf("peak RSS %d MiB", hwm>>20)
	if limit := int64(64 << 20); hwm > limit {
		t.Errorf("peak RSS %d MiB for two responses whose Content-Length (100 MB) exceeds max_body_bytes (64 MiB): they were read, want under %d MiB", hwm>>20, limit>>20)
	}
}

// hugeBody serves 100 MB listings to resources until each cycle failed
// on one, checks that nothing was lost, and returns the peak RSS and the
// scenario's figures.
func hugeBody(t *testing.T, scenario string, resources []string, chunked bool) (int64, *figures) {
	t.Helper()
	const size = 100 << 20
	fig := newFigures(t, scenario)
	fig.TrialsOf = "bodies"
	w := newWorld(t, UpstreamOptions{Seed: 15, RealTime: true, Initial: 30})
	cfg := w.config(setup{Timeout: "30s", Resources: resources})
	p := startReady(t, cfg)
	waitCleanOf(t, w, resources, 30*time.Second)
	base := p.metrics()
	w.up.SetFault(FaultSpec{Kind: FaultHuge, Size: size, Chunked: chunked})
	waitUntil(t, 60*time.Second, "the cycles to fail on the body", func() bool {
		m := p.metrics()
		for _, r := range resources {
			key := series("pollhook_polls_total", "resource", r, "outcome", "error")
			if m[key] <= base[key] {
				return false
			}
		}
		return true
	})
	w.up.ClearFaults()
	hwm, err := p.vmHWM()
	if err != nil {
		t.Skipf("cannot read the peak RSS: %v", err)
	}
	w.up.Step()
	w.finish(t, p, cfg, fig, 30*time.Second, resources...)
	// Read once pollhook has exited: the failure is counted in /metrics
	// a moment before it is logged.
	if !strings.Contains(p.out.String(), "max_body_bytes") {
		t.Errorf("the log does not say the body passed max_body_bytes\n%s", p.tail())
	}
	fig.Trials = w.up.Stats().Faults[FaultHuge]
	fig.Faults = fig.Trials
	fig.Note = fmt.Sprintf("max_body_bytes at its 64 MiB default, %d resource(s) reading at once; peak RSS (VmHWM) %d MiB", len(resources), hwm>>20)
	return hwm, fig
}

// TestMalformedDates gives some records malformed updated dates: they are
// skipped and counted, the rest are delivered, a known one is not taken
// for deleted, and once fixed each is reported.
func TestMalformedDates(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "5. bad input: malformed dates in records")
	fig.TrialsOf = "records"
	w := newWorld(t, UpstreamOptions{Seed: 16, RealTime: true, Initial: 40})
	cfg := w.config(setup{})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)
	base := p.metrics()

	bad := []string{"not a date", "2026-13-45T99:99:99.000Z", "1700000000", "2026-01-01", " "}
	from := len(w.rcv.Deliveries())
	watched := map[string]bool{}
	var ids []int
	for i, text := range bad {
		var c Change
		if i%2 == 0 {
			c = w.up.Create() // never seen by pollhook
		} else {
			c, _ = w.up.Update(w.up.Live()[i]) // known at its previous version
		}
		w.up.SetBadDate(c.ID, text)
		ids = append(ids, c.ID)
		watched[fmt.Sprint(c.ID)] = true
	}
	good := w.up.Create()
	waitUntil(t, 20*time.Second, "the skips to be counted", func() bool {
		m := p.metrics()
		for _, r := range []string{"inc", "snap"} {
			k := series("pollhook_records_skipped_total", "resource", r)
			if m[k]-base[k] < float64(len(bad)) {
				return false
			}
		}
		return true
	})
	waitClean(t, w, 20*time.Second) // the good record arrived
	pause(time.Second)              // and another cycle passed
	for _, d := range w.rcv.Deliveries()[from:] {
		for _, ev := range d.Events {
			if watched[ev.ObjectID] {
				t.Errorf("record %s, whose date is malformed: %s", ev.ObjectID, ev.Type)
			}
		}
	}
	for _, id := range ids {
		w.up.SetBadDate(id, "")
	}
	waitClean(t, w, 20*time.Second) // fixed, each is reported at its version
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	fig.Trials = len(bad)
	fig.Note = fmt.Sprintf("%d malformed dates skipped and counted in both resources, good record %d delivered meanwhile, none taken for deleted", len(bad), good.ID)
}
