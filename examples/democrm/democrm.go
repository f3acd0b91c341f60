// Package democrm is a simulated CRM API for pollhook's demo and tests: an
// in-process HTTP handler serving a list of contacts that are created, edited
// and deleted over time, paginated, with Java-style local-time dates.
//
// # HTTP API
//
// Every response is JSON (Content-Type: application/json).
//
//	GET /api/contacts?page=N&per_page=M
//
// lists ALL current contacts sorted by id, so that a client walking every
// page sees the full set (what pollhook's `deletes: snapshot` needs). page
// starts at 1 (default 1); per_page defaults to 10 and is capped at 100. A page
// past the end has an empty data array. A page or per_page that is not a
// positive integer is a 400.
//
//	{"data":[{"id":42,"first_name":"Ada","last_name":"Lovelace",
//	          "email":"ada.lovelace42@example.com","company":"Analytical Engines",
//	          "created":"11/23/2026 09:14:03","modified":"11/23/2026 09:15:40"}, …],
//	 "page":1,"per_page":10,"total":25}
//
//	GET /api/contacts/{id}
//
// returns one contact, or a 404 when there is no such contact.
//
// Any other path is a 404, and a method other than GET on the two paths above
// is a 405 (with Allow: GET). Errors have the body {"error":"…"}.
//
// # Dates
//
// created and modified are written in [DateFormat] ("MM/dd/yyyy HH:mm:ss"),
// in local time of [Options.Location] (America/New_York by default) and with
// no zone or offset, as many real CRMs do: a client must be told the zone.
// Dates have second precision. An edit always moves modified strictly
// forward: when the clock is still within the second of the contact's
// current modified date (or behind it), the new modified date is that date
// plus one second, a little in the future. Like any zoneless local time, the
// dates are ambiguous during the hour a daylight-saving change repeats.
//
// Contacts present at start are not changes: [CRM.Log] lists only the
// mutations made after [New].
package democrm

import (
	"cmp"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the default zone must load on systems without zoneinfo
)

// DateFormat is the Java SimpleDateFormat pattern the API writes created and
// modified dates in: local time in Options.Location, without a zone.
const DateFormat = "MM/dd/yyyy HH:mm:ss"

// goDateFormat is DateFormat as a Go layout.
const goDateFormat = "01/02/2006 15:04:05"

// DefaultLocation is the IANA name of the zone dates are written in when
// Options.Location is nil.
const DefaultLocation = "America/New_York"

// DefaultInitial is the number of contacts a CRM starts with when
// Options.Initial is zero.
const DefaultInitial = 25

// DefaultPerPage and MaxPerPage bound the per_page query parameter.
const (
	DefaultPerPage = 10
	MaxPerPage     = 100
)

// MinContacts is the fewest contacts Step leaves: below it, Step creates
// instead of deleting. Delete itself has no such floor.
const MinContacts = 3

// DefaultStepInterval is the interval Run uses when given a non-positive one.
const DefaultStepInterval = time.Second

// The kinds of Change.
const (
	Created = "created"
	Updated = "updated"
	Deleted = "deleted"
)

// Options configures a CRM. The zero value is usable.
type Options struct {
	// Location is the zone dates are written in. Nil means DefaultLocation.
	Location *time.Location
	// Seed makes names, edits and Step's choices deterministic: two CRMs with
	// the same Seed, clock and calls serve the same contacts.
	Seed int64
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Initial is the number of contacts at start. Zero means DefaultInitial;
	// a negative value starts with none.
	Initial int
}

// Change is one mutation applied to the CRM.
type Change struct {
	// Kind is Created, Updated or Deleted; empty when nothing was changed.
	Kind string
	// ID is the contact's id.
	ID int
	// At is when the change happened, in Options.Location: for Created and
	// Updated the contact's new modified date (second precision), for
	// Deleted the clock's time.
	At time.Time
}

// contact is a stored contact.
type contact struct {
	ID        int
	FirstName string
	LastName  string
	Email     string
	Company   string
	Created   time.Time
	Modified  time.Time
}

// wireContact is a contact as the API writes it.
type wireContact struct {
	ID        int    `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Company   string `json:"company"`
	Created   string `json:"created"`
	Modified  string `json:"modified"`
}

// page is a listing response.
type page struct {
	Data    []wireContact `json:"data"`
	Page    int           `json:"page"`
	PerPage int           `json:"per_page"`
	Total   int           `json:"total"`
}

// CRM is a simulated CRM. It is safe for concurrent use: mutations and
// requests may run in any number of goroutines.
type CRM struct {
	loc *time.Location
	now func() time.Time

	mu       sync.Mutex
	rng      *rand.Rand
	contacts []*contact // sorted by id
	nextID   int
	log      []Change
}

// New returns a CRM holding opts.Initial contacts, created over the 30 days
// before opts.Now(). It panics if the default zone cannot be loaded, which
// the embedded time/tzdata rules out.
func New(opts Options) *CRM {
	loc := opts.Location
	if loc == nil {
		var err error
		loc, err = time.LoadLocation(DefaultLocation)
		if err != nil {
			panic("democrm: load default location: " + err.Error())
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	seed := uint64(opts.Seed)
	c := &CRM{
		loc:    loc,
		now:    now,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nextID: 1,
	}
	n := opts.Initial
	if n == 0 {
		n = DefaultInitial
	}
	if n < 0 {
		n = 0
	}
	const span = 30 * 24 * time.Hour
	start := now().Truncate(time.Second)
	// Older ids were created earlier, as in a real database.
	ages := make([]time.Duration, n)
	for i := range ages {
		ages[i] = time.Duration(c.rng.Int64N(int64(span))).Truncate(time.Second)
	}
	slices.SortFunc(ages, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	for _, age := range ages {
		k := c.newContact("", start.Add(-age))
		k.Modified = k.Created.Add(time.Duration(c.rng.Int64N(int64(age) + 1)).Truncate(time.Second))
	}
	return c
}

// newContact adds a contact created at t, named name ("First Last") or, when
// name is empty, at random. The caller holds c.mu.
func (c *CRM) newContact(name string, t time.Time) *contact {
	first, last, _ := strings.Cut(strings.TrimSpace(name), " ")
	last = strings.TrimSpace(last)
	if first == "" {
		first, last = pick(c.rng, firstNames), pick(c.rng, lastNames)
	}
	k := &contact{
		ID:        c.nextID,
		FirstName: first,
		LastName:  last,
		Company:   pick(c.rng, companies),
		Created:   t,
		Modified:  t,
	}
	k.Email = email(first, last, k.ID, domains[0])
	c.nextID++
	c.contacts = append(c.contacts, k)
	return k
}

// Len returns the number of contacts.
func (c *CRM) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.contacts)
}

// Log returns every change applied so far, oldest first. It is the ground
// truth a poller's events can be checked against.
func (c *CRM) Log() []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// Step applies one random mutation: a create (about 40%), an edit (45%) or a
// delete (15%; a create instead when only MinContacts remain), and returns it.
func (c *CRM) Step() Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.contacts)
	switch r := c.rng.IntN(100); {
	case r < 40 || n == 0:
		return c.create("")
	case r < 85:
		return c.edit(c.contacts[c.rng.IntN(n)])
	case n <= MinContacts:
		return c.create("")
	default:
		return c.delete(c.rng.IntN(n))
	}
}

// Create adds a contact named name ("First Last"; a random name when empty)
// and returns the change.
func (c *CRM) Create(name string) Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.create(name)
}

// Edit changes the email, company or name of contact id, moves its modified
// date forward and returns the change. For an unknown id it changes nothing
// and returns the zero Change.
func (c *CRM) Edit(id int) Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.find(id)
	if !ok {
		return Change{}
	}
	return c.edit(c.contacts[i])
}

// Delete removes contact id and returns the change. For an unknown id it
// changes nothing and returns the zero Change.
func (c *CRM) Delete(id int) Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.find(id)
	if !ok {
		return Change{}
	}
	return c.delete(i)
}

// Run calls Step every interval until ctx is done. A non-positive every
// means DefaultStepInterval.
func (c *CRM) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultStepInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Step()
		}
	}
}

// create, edit and delete are the mutations; the caller holds c.mu.

func (c *CRM) create(name string) Change {
	k := c.newContact(name, c.now().Truncate(time.Second))
	return c.record(Created, k.ID, k.Modified)
}

func (c *CRM) edit(k *contact) Change {
	switch c.rng.IntN(3) {
	case 0:
		// A new address at another domain.
		at := strings.SplitN(k.Email, "@", 2)
		dom := ""
		if len(at) == 2 {
			dom = at[1]
		}
		k.Email = email(k.FirstName, k.LastName, k.ID, pickOther(c.rng, domains, dom))
	case 1:
		k.Company = pickOther(c.rng, companies, k.Company)
	default:
		k.LastName = pickOther(c.rng, lastNames, k.LastName)
	}
	m := c.now().Truncate(time.Second)
	if !m.After(k.Modified) {
		m = k.Modified.Add(time.Second)
	}
	k.Modified = m
	return c.record(Updated, k.ID, m)
}

func (c *CRM) delete(i int) Change {
	id := c.contacts[i].ID
	c.contacts = slices.Delete(c.contacts, i, i+1)
	return c.record(Deleted, id, c.now())
}

// record appends a change to the log and returns it.
func (c *CRM) record(kind string, id int, at time.Time) Change {
	ch := Change{Kind: kind, ID: id, At: at.In(c.loc)}
	c.log = append(c.log, ch)
	return ch
}

// find returns the index of contact id. The caller holds c.mu.
func (c *CRM) find(id int) (int, bool) {
	return slices.BinarySearchFunc(c.contacts, id, func(k *contact, id int) int { return k.ID - id })
}

// wire formats k for the API. The caller holds c.mu.
func (c *CRM) wire(k *contact) wireContact {
	return wireContact{
		ID:        k.ID,
		FirstName: k.FirstName,
		LastName:  k.LastName,
		Email:     k.Email,
		Company:   k.Company,
		Created:   k.Created.In(c.loc).Format(goDateFormat),
		Modified:  k.Modified.In(c.loc).Format(goDateFormat),
	}
}

// ServeHTTP serves the API described in the package comment.
func (c *CRM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/api/contacts"
	path := r.URL.Path
	switch {
	case path == prefix:
		if !allowGet(w, r) {
			return
		}
		c.serveList(w, r)
	case strings.HasPrefix(path, prefix+"/") && path != prefix+"/":
		if !allowGet(w, r) {
			return
		}
		c.serveOne(w, strings.TrimPrefix(path, prefix+"/"))
	default:
		writeError(w, http.StatusNotFound, "no such endpoint: "+path)
	}
}

func (c *CRM) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, ok := positive(w, q.Get("page"), "page", 1)
	if !ok {
		return
	}
	per, ok := positive(w, q.Get("per_page"), "per_page", DefaultPerPage)
	if !ok {
		return
	}
	per = min(per, MaxPerPage)

	c.mu.Lock()
	out := page{Data: []wireContact{}, Page: pg, PerPage: per, Total: len(c.contacts)}
	// Compare page numbers rather than offsets: (pg-1)*per may overflow.
	if n := len(c.contacts); pg-1 < (n+per-1)/per {
		from := (pg - 1) * per
		for _, k := range c.contacts[from:min(from+per, n)] {
			out.Data = append(out.Data, c.wire(k))
		}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (c *CRM) serveOne(w http.ResponseWriter, s string) {
	id, err := strconv.Atoi(s)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such contact: "+s)
		return
	}
	c.mu.Lock()
	i, ok := c.find(id)
	var k wireContact
	if ok {
		k = c.wire(c.contacts[i])
	}
	c.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no such contact: "+s)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// allowGet answers 405 unless r is a GET.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed: "+r.Method)
	return false
}

// positive parses a positive integer query parameter, answering 400 when it
// is not one; empty means def.
func positive(w http.ResponseWriter, s, name string, def int) (int, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, name+" must be a positive integer (got "+strconv.Quote(s)+")")
		return 0, false
	}
	return n, true
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
