package democrm_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollhook/pollhook/examples/democrm"
)

// goLayout is democrm.DateFormat in Go's notation.
const goLayout = "01/02/2006 15:04:05"

// t0 is the test clock's start: 09:14:03.7 in New York.
var t0 = time.Date(2026, 11, 23, 14, 14, 3, 700_000_000, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type contact struct {
	ID        int    `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Company   string `json:"company"`
	Created   string `json:"created"`
	Modified  string `json:"modified"`
}

type page struct {
	Data    []contact `json:"data"`
	Page    int       `json:"page"`
	PerPage int       `json:"per_page"`
	Total   int       `json:"total"`
}

// get fetches url and decodes its JSON body into v, returning the response.
func get(t testing.TB, url string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("get %s: Content-Type %q, want application/json", url, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v (body %s)", url, err, body)
	}
	return resp
}

func serve(t testing.TB, c *democrm.CRM) string {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv.URL
}

func getContact(t testing.TB, base string, id int) contact {
	t.Helper()
	var k contact
	if resp := get(t, fmt.Sprintf("%s/api/contacts/%d", base, id), &k); resp.StatusCode != http.StatusOK {
		t.Fatalf("get contact %d: %s", id, resp.Status)
	}
	return k
}

// listAll walks every page of the listing with the given per_page query
// value and returns the contacts in the order served.
func listAll(t testing.TB, base, perPage string, wantPer int) []contact {
	t.Helper()
	var all []contact
	for n := 1; ; n++ {
		url := fmt.Sprintf("%s/api/contacts?page=%d", base, n)
		if perPage != "" {
			url += "&per_page=" + perPage
		}
		var p page
		if resp := get(t, url, &p); resp.StatusCode != http.StatusOK {
			t.Fatalf("get %s: %s", url, resp.Status)
		}
		if p.Page != n || p.PerPage != wantPer {
			t.Fatalf("page %d: echoed page=%d per_page=%d, want %d and %d", n, p.Page, p.PerPage, n, wantPer)
		}
		if len(p.Data) == 0 {
			if wantPages := (p.Total + wantPer - 1) / wantPer; n != wantPages+1 {
				t.Fatalf("first empty page is %d, want %d (total %d)", n, wantPages+1, p.Total)
			}
			if len(all) != p.Total {
				t.Fatalf("pages held %d contacts, total says %d", len(all), p.Total)
			}
			return all
		}
		if len(p.Data) > wantPer {
			t.Fatalf("page %d holds %d contacts, per_page %d", n, len(p.Data), wantPer)
		}
		if len(p.Data) < wantPer && len(all)+len(p.Data) != p.Total {
			t.Fatalf("page %d is short (%d) but not the last", n, len(p.Data))
		}
		all = append(all, p.Data...)
	}
}

func TestPaginationCoversEveryContactOnce(t *testing.T) {
	c := democrm.New(democrm.Options{Seed: 7, Initial: 137, Now: newClock(t0).Now})
	for _, id := range []int{1, 5, 60, 137} {
		if ch := c.Delete(id); ch.Kind != democrm.Deleted {
			t.Fatalf("Delete(%d) = %+v", id, ch)
		}
	}
	var want []int
	for id := 1; id <= 137; id++ {
		if id != 1 && id != 5 && id != 60 && id != 137 {
			want = append(want, id)
		}
	}
	base := serve(t, c)
	for _, tt := range []struct {
		perPage string
		want    int
	}{
		{"", democrm.DefaultPerPage},
		{"1", 1},
		{"7", 7},
		{"10", 10},
		{"100", 100},
		{"133", 100},
		{"250", democrm.MaxPerPage},
	} {
		t.Run("per_page="+tt.perPage, func(t *testing.T) {
			var got []int
			for _, k := range listAll(t, base, tt.perPage, tt.want) {
				got = append(got, k.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids served = %v\nwant %v", got, want)
			}
		})
	}
	if c.Len() != len(want) {
		t.Errorf("Len() = %d, want %d", c.Len(), len(want))
	}
}

func TestListingMatchesSingleContact(t *testing.T) {
	c := democrm.New(democrm.Options{Seed: 3, Now: newClock(t0).Now})
	base := serve(t, c)
	for _, k := range listAll(t, base, "100", 100) {
		if got := getContact(t, base, k.ID); got != k {
			t.Errorf("GET /api/contacts/%d = %+v, listing has %+v", k.ID, got, k)
		}
	}
}

func TestStepProducesAllKinds(t *testing.T) {
	clk := newClock(t0)
	c := democrm.New(democrm.Options{Seed: 42, Now: clk.Now})
	counts := map[string]int{}
	var made []democrm.Change
	for range 100 {
		clk.Add(time.Second)
		ch := c.Step()
		counts[ch.Kind]++
		made = append(made, ch)
	}
	for _, k := range []string{democrm.Created, democrm.Updated, democrm.Deleted} {
		if counts[k] == 0 {
			t.Errorf("100 steps made no %q change (counts %v)", k, counts)
		}
	}
	if len(counts) != 3 {
		t.Errorf("kinds = %v, want only created, updated and deleted", counts)
	}
	if got, want := c.Len(), democrm.DefaultInitial+counts[democrm.Created]-counts[democrm.Deleted]; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got := c.Log(); !slices.Equal(got, made) {
		t.Errorf("Log() differs from the changes Step returned:\n%v\n%v", got, made)
	}
}

func TestStepMix(t *testing.T) {
	c := democrm.New(democrm.Options{Seed: 99, Now: newClock(t0).Now})
	const steps = 2000
	counts := map[string]int{}
	for range steps {
		counts[c.Step().Kind]++
	}
	for kind, want := range map[string]float64{democrm.Created: 0.40, democrm.Updated: 0.45, democrm.Deleted: 0.15} {
		if got := float64(counts[kind]) / steps; got < want-0.05 || got > want+0.05 {
			t.Errorf("%s: %.2f of steps, want about %.2f", kind, got, want)
		}
	}
}

func TestStepKeepsAFewContacts(t *testing.T) {
	c := democrm.New(democrm.Options{Seed: 5, Initial: -1, Now: newClock(t0).Now})
	if c.Len() != 0 {
		t.Fatalf("Initial -1: Len() = %d, want 0", c.Len())
	}
	for i := range 300 {
		before := c.Len()
		ch := c.Step()
		if before <= democrm.MinContacts && ch.Kind == democrm.Deleted {
			t.Fatalf("step %d deleted with only %d contacts", i, before)
		}
		if before == 0 && ch.Kind != democrm.Created {
			t.Fatalf("step %d on an empty CRM = %+v, want a create", i, ch)
		}
	}
}

func TestDatesInZoneAndPattern(t *testing.T) {
	datePattern := regexp.MustCompile(`^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$`)
	for _, tt := range []struct {
		zone string // "" = the default
		want string // t0 as written
	}{
		{"", "11/23/2026 09:14:03"},
		{"America/New_York", "11/23/2026 09:14:03"},
		{"UTC", "11/23/2026 14:14:03"},
		{"Asia/Tokyo", "11/23/2026 23:14:03"},
		{"Australia/Adelaide", "11/24/2026 00:44:03"},
	} {
		t.Run(tt.zone, func(t *testing.T) {
			opts := democrm.Options{Seed: 1, Now: newClock(t0).Now}
			loc, err := time.LoadLocation(cmp.Or(tt.zone, democrm.DefaultLocation))
			if err != nil {
				t.Fatal(err)
			}
			if tt.zone != "" {
				opts.Location = loc
			}
			c := democrm.New(opts)
			base := serve(t, c)
			ch := c.Create("Ada Lovelace")
			k := getContact(t, base, ch.ID)
			if k.Created != tt.want || k.Modified != tt.want {
				t.Errorf("created, modified = %q, %q; want %q", k.Created, k.Modified, tt.want)
			}
			at, err := time.ParseInLocation(goLayout, k.Modified, loc)
			if err != nil {
				t.Fatal(err)
			}
			if !at.Equal(t0.Truncate(time.Second)) || !ch.At.Equal(at) {
				t.Errorf("modified parses as %v, Change.At %v; want %v", at, ch.At, t0.Truncate(time.Second))
			}
			if ch.At.Location().String() != loc.String() {
				t.Errorf("Change.At in %v, want %v", ch.At.Location(), loc)
			}

			// The contacts present at start: within the last 30 days,
			// created no later than modified.
			for _, k := range listAll(t, base, "100", 100) {
				var ts [2]time.Time
				for i, s := range []string{k.Created, k.Modified} {
					if !datePattern.MatchString(s) {
						t.Fatalf("contact %d: date %q does not match %s", k.ID, s, democrm.DateFormat)
					}
					if ts[i], err = time.ParseInLocation(goLayout, s, loc); err != nil {
						t.Fatal(err)
					}
				}
				if ts[0].After(ts[1]) || ts[1].After(t0) || ts[0].Before(t0.Add(-31*24*time.Hour)) {
					t.Errorf("contact %d: created %s, modified %s; want within 30 days before %s", k.ID, k.Created, k.Modified, tt.want)
				}
			}
		})
	}
}

func TestInitialContactsAreOlderByID(t *testing.T) {
	c := democrm.New(democrm.Options{Seed: 11, Now: newClock(t0).Now, Location: time.UTC})
	base := serve(t, c)
	var prev time.Time
	for _, k := range listAll(t, base, "100", 100) {
		created, err := time.Parse(goLayout, k.Created)
		if err != nil {
			t.Fatal(err)
		}
		if created.Before(prev) {
			t.Errorf("contact %d created %s, before a lower id (%s)", k.ID, created, prev)
		}
		prev = created
	}
}

func TestEditAdvancesModifiedWithinASecond(t *testing.T) {
	clk := newClock(t0)
	c := democrm.New(democrm.Options{Seed: 2, Now: clk.Now, Location: time.UTC})
	base := serve(t, c)
	id := c.Create("Grace Hopper").ID
	sec := t0.Truncate(time.Second)
	steps := []struct {
		advance time.Duration
		want    time.Time
	}{
		{0, sec.Add(1 * time.Second)},                      // same instant
		{0, sec.Add(2 * time.Second)},                      // again: stays ahead
		{200 * time.Millisecond, sec.Add(3 * time.Second)}, // clock behind modified
		{10 * time.Second, t0.Add(10200 * time.Millisecond).Truncate(time.Second)},
		{0, t0.Add(10200 * time.Millisecond).Truncate(time.Second).Add(time.Second)},
	}
	prev := getContact(t, base, id)
	changed := map[string]bool{}
	for i, s := range steps {
		clk.Add(s.advance)
		ch := c.Edit(id)
		k := getContact(t, base, id)
		if want := s.want.Format(goLayout); k.Modified != want || !ch.At.Equal(s.want) {
			t.Errorf("edit %d: modified %q, Change.At %v; want %q", i, k.Modified, ch.At, want)
		}
		if k.Created != prev.Created {
			t.Errorf("edit %d: created moved from %q to %q", i, prev.Created, k.Created)
		}
		changed[diff(prev, k)] = true
		prev = k
	}
	for range 30 {
		c.Edit(id)
		k := getContact(t, base, id)
		changed[diff(prev, k)] = true
		prev = k
	}
	for _, f := range []string{"email", "company", "last_name"} {
		if !changed[f] {
			t.Errorf("35 edits never changed %s (changed: %v)", f, changed)
		}
	}
	if changed["none"] || changed["several"] {
		t.Errorf("an edit did not change exactly one field: %v", changed)
	}
}

// diff names the one field other than modified that differs between a and b.
func diff(a, b contact) string {
	var fields []string
	if a.Email != b.Email {
		fields = append(fields, "email")
	}
	if a.Company != b.Company {
		fields = append(fields, "company")
	}
	if a.FirstName != b.FirstName || a.LastName != b.LastName {
		fields = append(fields, "last_name")
	}
	switch len(fields) {
	case 0:
		return "none"
	case 1:
		return fields[0]
	}
	return "several"
}

func TestLogMatchesMutations(t *testing.T) {
	clk := newClock(t0)
	c := democrm.New(democrm.Options{Seed: 8, Now: clk.Now, Location: time.UTC})
	base := serve(t, c)
	if got := c.Log(); len(got) != 0 {
		t.Fatalf("Log() before any change = %v, want empty (initial contacts are not changes)", got)
	}
	sec := t0.Truncate(time.Second)

	created := c.Create("Grace Hopper")
	k := getContact(t, base, created.ID)
	if created.ID != democrm.DefaultInitial+1 || k.FirstName != "Grace" || k.LastName != "Hopper" ||
		k.Email != fmt.Sprintf("grace.hopper%d@example.com", created.ID) {
		t.Errorf("Create: change %+v, contact %+v", created, k)
	}
	clk.Add(5 * time.Second)
	updated := c.Edit(created.ID)
	clk.Add(5 * time.Second)
	deleted := c.Delete(created.ID)
	for name, ch := range map[string]democrm.Change{
		"Edit of unknown id":   c.Edit(9999),
		"Delete of unknown id": c.Delete(9999),
		"Delete again":         c.Delete(created.ID),
	} {
		if ch != (democrm.Change{}) {
			t.Errorf("%s = %+v, want the zero Change", name, ch)
		}
	}
	want := []democrm.Change{
		{Kind: democrm.Created, ID: created.ID, At: sec},
		{Kind: democrm.Updated, ID: created.ID, At: sec.Add(5 * time.Second)},
		{Kind: democrm.Deleted, ID: created.ID, At: t0.Add(10 * time.Second)},
	}
	got := c.Log()
	if len(got) != len(want) {
		t.Fatalf("Log() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].ID != want[i].ID || !got[i].At.Equal(want[i].At) {
			t.Errorf("Log()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[0] != created || got[1] != updated || got[2] != deleted {
		t.Errorf("Log() = %v, want the changes returned: %v %v %v", got, created, updated, deleted)
	}
	got[0].ID = -1
	if c.Log()[0].ID != created.ID {
		t.Error("changing the slice Log returned changed the CRM's log")
	}

	var e struct{ Error string }
	if resp := get(t, fmt.Sprintf("%s/api/contacts/%d", base, created.ID), &e); resp.StatusCode != http.StatusNotFound || e.Error == "" {
		t.Errorf("GET deleted contact: %s %+v, want 404 with an error", resp.Status, e)
	}
	if c.Len() != democrm.DefaultInitial {
		t.Errorf("Len() = %d, want %d", c.Len(), democrm.DefaultInitial)
	}
}

func TestHTTPErrors(t *testing.T) {
	base := serve(t, democrm.New(democrm.Options{Seed: 1}))
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", http.StatusNotFound},
		{"GET", "/api/contact", http.StatusNotFound},
		{"GET", "/api/contacts/", http.StatusNotFound},
		{"GET", "/api/contacts/abc", http.StatusNotFound},
		{"GET", "/api/contacts/0", http.StatusNotFound},
		{"GET", "/api/contacts/1/notes", http.StatusNotFound},
		{"POST", "/nope", http.StatusNotFound},
		{"POST", "/api/contacts", http.StatusMethodNotAllowed},
		{"DELETE", "/api/contacts/1", http.StatusMethodNotAllowed},
		{"GET", "/api/contacts?page=0", http.StatusBadRequest},
		{"GET", "/api/contacts?page=-1", http.StatusBadRequest},
		{"GET", "/api/contacts?per_page=abc", http.StatusBadRequest},
		{"GET", "/api/contacts?per_page=0", http.StatusBadRequest},
		{"GET", "/api/contacts?page=99999999999999999999", http.StatusBadRequest},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("decode error body: %v", err)
			}
			if resp.StatusCode != tt.status || e.Error == "" {
				t.Errorf("%s, error %q; want %d with an error message", resp.Status, e.Error, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tt.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET" {
				t.Errorf("Allow %q, want GET", resp.Header.Get("Allow"))
			}
		})
	}
}

func TestPagePastTheEnd(t *testing.T) {
	base := serve(t, democrm.New(democrm.Options{Seed: 1}))
	for _, q := range []string{"page=4", "page=1000000000000&per_page=100"} {
		var p page
		if resp := get(t, base+"/api/contacts?"+q, &p); resp.StatusCode != http.StatusOK || p.Data == nil || len(p.Data) != 0 || p.Total != democrm.DefaultInitial {
			t.Errorf("%s: %s %+v, want 200 with an empty data array and total %d", q, resp.Status, p, democrm.DefaultInitial)
		}
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	run := func(seed int64) (string, []democrm.Change) {
		clk := newClock(t0)
		c := democrm.New(democrm.Options{Seed: seed, Now: clk.Now})
		for range 50 {
			clk.Add(700 * time.Millisecond)
			c.Step()
		}
		var p page
		get(t, serve(t, c)+"/api/contacts?per_page=100", &p)
		b, _ := json.Marshal(p)
		return string(b), c.Log()
	}
	a, logA := run(1)
	b, logB := run(1)
	sameChange := func(x, y democrm.Change) bool { return x.Kind == y.Kind && x.ID == y.ID && x.At.Equal(y.At) }
	if a != b || !slices.EqualFunc(logA, logB, sameChange) {
		t.Error("two CRMs with the same seed and clock differ")
	}
	if c, _ := run(2); c == a {
		t.Error("CRMs with seeds 1 and 2 serve the same contacts")
	}
}

func TestConcurrentStepsAndPages(t *testing.T) {
	c := democrm.New(democrm.Options{Seed: 4})
	base := serve(t, c)
	stop := make(chan struct{})
	steps := make(chan int)
	go func() {
		n := 0
		defer func() { steps <- n }()
		for {
			select {
			case <-stop:
				return
			default:
				c.Step()
				n++
			}
		}
	}()
	for range 50 {
		for n := 1; n <= 3; n++ {
			var p page
			if resp := get(t, fmt.Sprintf("%s/api/contacts?page=%d&per_page=5", base, n), &p); resp.StatusCode != http.StatusOK {
				t.Fatalf("page %d: %s", n, resp.Status)
			}
			for i := 1; i < len(p.Data); i++ {
				if p.Data[i].ID <= p.Data[i-1].ID {
					t.Fatalf("page %d not sorted by id: %v", n, p.Data)
				}
			}
		}
	}
	close(stop)
	n := <-steps
	if got := len(c.Log()); got != n {
		t.Errorf("Log() has %d changes after %d steps", got, n)
	}
}

func TestRunStepsOnTheInterval(t *testing.T) {
	for _, tt := range []struct {
		every, wantEvery time.Duration
	}{
		{time.Second, time.Second},
		{250 * time.Millisecond, 250 * time.Millisecond},
		{0, democrm.DefaultStepInterval},
	} {
		t.Run(tt.every.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				c := democrm.New(democrm.Options{Seed: 6})
				ctx, cancel := context.WithTimeout(context.Background(), 10*tt.wantEvery+tt.wantEvery/2)
				defer cancel()
				c.Run(ctx, tt.every) // returns once ctx is done
				log := c.Log()
				if len(log) != 10 {
					t.Fatalf("Run for 10.5 intervals made %d changes, want 10", len(log))
				}
				if tt.wantEvery < time.Second {
					return // dates have second precision: several steps share one
				}
				for i, ch := range log {
					if want := start.Add(time.Duration(i+1) * tt.wantEvery); !ch.At.Equal(want) {
						t.Errorf("change %d (%s) at %v, want %v", i, ch.Kind, ch.At, want)
					}
				}
			})
		})
	}
}
