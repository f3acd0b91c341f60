package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	long     = flag.Bool("long", false, "run the full trial counts (200 kills, a longer fault mix)")
	reportTo = flag.String("report", "", "write this run's figures into this Markdown file (a relative path is taken from the module root), between its figures markers")
)

// binary is the pollhook binary TestMain built; buildSkip says why there
// is none when the toolchain is missing.
var (
	binary    string
	buildSkip string
)

// scenariosAtOnce is how many scenarios run at a time unless -parallel
// says otherwise. A scenario spends most of its time waiting on pollhook's
// one-second schedule, its retry schedule or its own pauses, not on the
// CPU, so well more of them than there are CPUs fit side by side.
const scenariosAtOnce = 16

func TestMain(m *testing.M) {
	flag.Parse()
	if !flagGiven("test.parallel") {
		flag.Set("test.parallel", strconv.Itoa(scenariosAtOnce))
	}
	dir, err := os.MkdirTemp("", "pollhook-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	// go test puts its own toolchain first on the PATH of the tests.
	if goTool, err := exec.LookPath("go"); err != nil {
		buildSkip = "no go toolchain to build pollhook: " + err.Error()
	} else {
		binary = filepath.Join(dir, "pollhook")
		cmd := exec.Command(goTool, "build", "-o", binary, "github.com/pollhook/pollhook/cmd/pollhook")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "reliability: build pollhook: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	start := time.Now()
	code := m.Run()
	if *reportTo != "" {
		if err := writeReport(*reportTo, time.Since(start)); err != nil {
			fmt.Fprintln(os.Stderr, "reliability: write report:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// needBinary skips t when pollhook could not be built for want of a
// toolchain.
func needBinary(t *testing.T) {
	t.Helper()
	if binary == "" {
		t.Skip(buildSkip)
	}
}

// trials returns short normally and full with -long.
func trials(short, full int) int {
	if *long {
		return full
	}
	return short
}

// testSecret is the Standard Webhooks key of every run.
var testSecret = func() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}()

// world is one scenario's surroundings: an upstream, a receiver and a
// directory for the config and the state.
type world struct {
	t   *testing.T
	dir string
	up  *Upstream
	rcv *Receiver
	// upURL and rcvURL are the servers' base URLs.
	upURL, rcvURL string
	// stream, when set, is where the destination delivers instead of
	// the receiver: a NATS JetStream stream.
	stream *natsStream
}

// deliveries returns what the destination accepted: the receiver's
// requests, or the stream's messages.
func (w *world) deliveries() []Delivery {
	if w.stream != nil {
		return w.stream.Deliveries(w.t)
	}
	return w.rcv.Deliveries()
}

// bad counts the deliveries whose signature did not verify, and those
// whose body was not pollhook events matching their id.
func (w *world) bad() (signatures, bodies int) {
	if w.stream != nil {
		return w.stream.Bad()
	}
	s := w.rcv.Stats()
	return s.BadSignatures, s.BadBodies
}

func newWorld(t *testing.T, opts UpstreamOptions) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("runs pollhook as a process for seconds: skipped with -short")
	}
	needBinary(t)
	w := &world{t: t, dir: t.TempDir(), up: NewUpstream(opts)}
	var err error
	if w.rcv, err = NewReceiver(testSecret, opts.Seed+1); err != nil {
		t.Fatal(err)
	}
	us := httptest.NewServer(w.up)
	rs := httptest.NewServer(w.rcv)
	t.Cleanup(func() {
		w.rcv.Close()
		rs.CloseClientConnections()
		us.CloseClientConnections()
		rs.Close()
		us.Close()
	})
	w.upURL, w.rcvURL = us.URL, rs.URL+"/hook"
	return w
}

// setup is a pollhook config for a world. Zero fields get the defaults
// noted.
type setup struct {
	// StatePath is the SQLite file; default <dir>/state.db.
	StatePath string
	// DSN, when set, keeps the state in that PostgreSQL database instead.
	DSN string
	// Lease is state.lease; default pollhook's.
	Lease string
	// Timeout, Attempts and MaxWait are the source's; default 1s, 2, 1s.
	Timeout  string
	Attempts int
	MaxWait  string
	// Resources are the resources polled, "inc" and "snap" (default
	// both), or names that start so (inc2, snap7): each reads the same
	// upstream list as its kind.
	Resources []string
	// Inc and Snap replace the resources' url and pagination lines.
	Inc, Snap string
	// DeleteGuard is snap's delete_guard; default pollhook's.
	DeleteGuard string
	// Lookback is inc's; default 10s.
	Lookback string
	// Retry is the destination's retry schedule; default 30 × 300ms.
	Retry string
	// DestTimeout is the destination's timeout; default 1s.
	DestTimeout string
	// Ordering is the destination's; default unordered.
	Ordering string
	// NoDestination leaves the destination out.
	NoDestination bool
	// DestURL is the destination's url; default the receiver's.
	// DestExtra are more of its keys, each line indented four spaces.
	DestURL, DestExtra string
	// Also, when set, is the URL of a second destination, app2, with the
	// same settings.
	Also string
	// Zone, when set, reads the dates as local times of this zone without
	// an offset (LocalFormat), as an Upstream with a Zone writes them.
	Zone string
}

// incDefault and snapDefault are the url and pagination of the two
// resources: inc asks for what changed since the watermark (tombstones
// included, filtered out) with offset paging; snap lists everything with
// keyset (cursor) paging and detects deletes.
const (
	incDefault = `    url: /a/items?since=${gmtDate:` + DateFormat + `}&include_deleted=true
    filter: '.deleted != true'
    pagination: { type: offset, limit: 50, max_pages: 200 }`
	snapDefault = `    url: /b/items
    pagination: { type: cursor, next_cursor: .next, max_pages: 200 }`
)

// config writes s as the world's config and returns its path.
func (w *world) config(s setup) string {
	w.t.Helper()
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.StatePath, filepath.Join(w.dir, "state.db"))
	def(&s.Timeout, "1s")
	def(&s.MaxWait, "1s")
	def(&s.Inc, incDefault)
	def(&s.Snap, snapDefault)
	def(&s.Lookback, "10s")
	def(&s.Retry, "["+strings.TrimSuffix(strings.Repeat("300ms, ", 30), ", ")+"]")
	def(&s.DestTimeout, "1s")
	def(&s.Ordering, "unordered")
	def(&s.DestURL, w.rcvURL)
	if s.Attempts == 0 {
		s.Attempts = 2
	}
	if s.Resources == nil {
		s.Resources = []string{"inc", "snap"}
	}
	var b strings.Builder
	state := "path: " + s.StatePath
	if s.DSN != "" {
		state = "dsn: " + s.DSN
	}
	if s.Lease != "" {
		state += "\n  lease: " + s.Lease
	}
	fmt.Fprintf(&b, `state:
  %s
http:
  listen: 127.0.0.1:0
sources:
  - name: up
    base_url: %s
    timeout: %s
    retry: { attempts: %d, max_wait: %s }
resources:
`, state, w.upURL, s.Timeout, s.Attempts, s.MaxWait)
	format, zone := DateFormat, ""
	if s.Zone != "" {
		format = LocalFormat
		zone = "\n      updated_timezone: " + s.Zone + "\n      created_timezone: " + s.Zone
	}
	dates := `    items: .items
    schedule: 1s
    start: beginning
    dates:
      updated_field: updated
      updated_format: "` + format + `"
      created_field: created
      created_format: "` + format + `"` + zone + `
`
	for _, r := range s.Resources {
		switch {
		case strings.HasPrefix(r, "inc"):
			fmt.Fprintf(&b, "  - name: %s\n    object: item\n%s\n%s    lookback: %s\n", r, s.Inc, dates, s.Lookback)
		case strings.HasPrefix(r, "snap"):
			fmt.Fprintf(&b, "  - name: %s\n    object: item\n%s\n%s    deletes: snapshot\n", r, s.Snap, dates)
			if s.DeleteGuard != "" {
				fmt.Fprintf(&b, "    delete_guard: %s\n", s.DeleteGuard)
			}
		default:
			w.t.Fatalf("unknown resource %q", r)
		}
	}
	if !s.NoDestination {
		b.WriteString("destinations:\n")
		dests := [][2]string{{"app", s.DestURL}}
		if s.Also != "" {
			dests = append(dests, [2]string{"app2", s.Also})
		}
		for _, d := range dests {
			fmt.Fprintf(&b, `  - name: %s
    url: %s
    secret: %s
    events: ["*.*"]
    timeout: %s
    ordering: %s
    retry: { schedule: %s }
%s`, d[0], d[1], testSecret, s.DestTimeout, s.Ordering, s.Retry, s.DestExtra)
		}
	}
	path := filepath.Join(w.dir, "pollhook.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// check runs Check on every resource of s and returns the results.
func (w *world) check(resources ...string) []Result {
	truth := w.up.Truth()
	got := w.deliveries()
	var out []Result
	for _, r := range resources {
		out = append(out, Check(truth, got, w.checkOptions(r)))
	}
	return out
}

// checkOptions are what Check expects of resource r of a world: snap
// detects deletes, and both start at the beginning.
func (w *world) checkOptions(r string) CheckOptions {
	return CheckOptions{Resource: r, Deletes: strings.HasPrefix(r, "snap"), DateText: w.up.DateText, Created: true}
}

// mutate runs up.Mutate every interval until the returned stop is called.
func (w *world) mutate(interval, lateBy time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				w.up.Mutate(lateBy)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// proc is a running pollhook process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	out     *logBuffer
	started time.Time
	done    chan struct{}
	err     error // Wait's, once done is closed

	mu     sync.Mutex
	listen string // the address of the "listening" line, once seen
}

// logBuffer collects a process's output; lines can be waited for.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start starts `pollhook run` on cfg without waiting for it.
func start(t testing.TB, cfg string) *proc {
	t.Helper()
	p := &proc{t: t, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, "run", "-c", cfg, "--log-format", "json", "--grace", "10s")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = os.Environ()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.started = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// startReady starts `pollhook run` on cfg and waits for its HTTP listener.
func startReady(t *testing.T, cfg string) *proc {
	t.Helper()
	p := start(t, cfg)
	p.addr()
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and returns the exit code; it fails the test if the
// process is still there after 20s.
func (p *proc) stop() int {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill()
		p.t.Fatalf("pollhook run did not stop within 20s of SIGTERM\n%s", p.tail())
	}
	return p.cmd.ProcessState.ExitCode()
}

// tail returns the last lines of the process's output.
func (p *proc) tail() string {
	lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// addr waits for the "listening" log line and returns its address.
func (p *proc) addr() string {
	p.t.Helper()
	p.mu.Lock()
	addr := p.listen
	p.mu.Unlock()
	if addr != "" {
		return addr
	}
	waitUntil(p.t, 15*time.Second, "pollhook to listen", func() bool {
		if !p.running() {
			p.t.Fatalf("pollhook exited before listening: %v\n%s", p.err, p.tail())
		}
		sc := bufio.NewScanner(strings.NewReader(p.out.String()))
		for sc.Scan() {
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addr = l.Addr
				return true
			}
		}
		return false
	})
	p.mu.Lock()
	p.listen = addr
	p.mu.Unlock()
	return addr
}

// get fetches a path of the process's HTTP listener.
func (p *proc) get(path string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.addr() + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metrics returns the process's /metrics as series → value; a series is
// written as in the exposition: name{a="x",b="y"}, labels sorted.
func (p *proc) metrics() map[string]float64 {
	p.t.Helper()
	m, err := p.readMetrics()
	if err != nil {
		p.t.Fatalf("%v\n%s", err, p.tail())
	}
	return m
}

// readMetrics is metrics for a goroutine other than the test's, which
// must not fail the test itself.
func (p *proc) readMetrics() (map[string]float64, error) {
	code, body, err := p.get("/metrics")
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d %v", code, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// series names a metric series: series("m", "b", "2", "a", "1") is
// m{a="1",b="2"}.
func series(name string, kv ...string) string {
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+`="`+kv[i+1]+`"`)
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// polls returns the process's count of cycles of resource with outcome.
func (p *proc) polls(resource, outcome string) float64 {
	return p.metrics()[series("pollhook_polls_total", "resource", resource, "outcome", outcome)]
}

// vmHWM returns the process's peak resident set size in bytes.
func (p *proc) vmHWM() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/pid/status")
}

// drain waits until p has completed three more cycles of each resource
// than when it was called, then until every event of the outbox of cfg's
// state file has reached the receiver. Three: the first may have begun
// before the upstream's last change; the second sees every change the
// upstream held when drain was called, and misses every record deleted by
// then; the third confirms those deletes (a snapshot delete needs two
// complete listings without the record).
func (w *world) drain(p *proc, cfg string, resources []string, timeout time.Duration) {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	base := p.metrics()
	waitUntil(t, timeout, "three more cycles of each resource", func() bool {
		if !p.running() {
			t.Fatalf("pollhook exited: %v\n%s", p.err, p.tail())
		}
		m := p.metrics()
		for _, r := range resources {
			ok := series("pollhook_polls_total", "resource", r, "outcome", "ok")
			if m[ok] < base[ok]+3 {
				return false
			}
		}
		return true
	})
	var missing int
	defer func() {
		if t.Failed() {
			t.Logf("%d outbox events never arrived\n%s", missing, p.tail())
		}
	}()
	waitUntil(t, time.Until(deadline), "every outbox event to arrive", func() bool {
		got := map[string]bool{}
		for _, d := range w.deliveries() {
			for _, ev := range d.Events {
				got[ev.ID] = true
			}
		}
		missing = 0
		for _, id := range outbox(t, cfg) {
			if !got[id] {
				missing++
			}
		}
		return missing == 0
	})
}

// outbox returns the ids of the events in the outbox of cfg's state file,
// in outbox order, as `pollhook events` lists them.
func outbox(t *testing.T, cfg string) []string {
	t.Helper()
	return cliField(t, "id", "events", "-c", cfg, "--json", "--limit", "0")
}

// cliField runs a pollhook command that prints JSON lines and returns the
// string field key of each line, in order.
func cliField(t *testing.T, key string, args ...string) []string {
	t.Helper()
	out, errOut, code := cli(t, nil, args...)
	if code != 0 {
		t.Fatalf("pollhook %s: exit %d: %s", args[0], code, errOut)
	}
	var vals []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("pollhook %s: %q: %v", args[0], line, err)
		}
		v, ok := fields[key].(string)
		if !ok {
			t.Fatalf("pollhook %s: %q has no string %s", args[0], line, key)
		}
		vals = append(vals, v)
	}
	return vals
}

// cursorState is a line of `pollhook cursors --json`.
type cursorState struct {
	Resource    string    `json:"resource"`
	Watermark   time.Time `json:"watermark"`
	Completed   int64     `json:"completed"`
	Known       int64     `json:"known"`
	HeldDeletes int64     `json:"held_deletes"`
}

// cursors returns the state of each resource, as `pollhook cursors`
// reads it from the state file.
func cursors(t *testing.T, cfg string) map[string]cursorState {
	t.Helper()
	out, errOut, code := cli(t, nil, "cursors", "-c", cfg, "--json")
	if code != 0 {
		t.Fatalf("pollhook cursors: exit %d: %s", code, errOut)
	}
	states := map[string]cursorState{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s cursorState
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("pollhook cursors: %q: %v", line, err)
		}
		states[s.Resource] = s
	}
	return states
}

// cli runs a pollhook command to its end and returns its output and exit
// code.
func cli(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("pollhook %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// waitUntil calls cond every 50ms until it holds, and fails t after
// timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("waited %s for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// pause waits d: the pace of a scenario against a real process.
func pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// requireClean fails t with every result that lost, duplicated, invented
// or left unconverged anything, and with any bad signature.
// finish is the common end of a scenario: it lets everything drain,
// stops pollhook (which must exit 0), checks resources against the ground
// truth, requires a clean result and records it in fig.
func (w *world) finish(t *testing.T, p *proc, cfg string, fig *figures, timeout time.Duration, resources ...string) []Result {
	t.Helper()
	w.drain(p, cfg, resources, timeout)
	if code := p.stop(); code != 0 {
		t.Errorf("pollhook exited %d after SIGTERM\n%s", code, p.tail())
	}
	results := w.check(resources...)
	requireClean(t, w, results)
	fig.add(w, results)
	return results
}

// explain logs, for the first objects a result faults, their history
// upstream and the events delivered of them.
func (w *world) explain(t *testing.T, r Result) {
	t.Helper()
	objects := map[string]bool{}
	for _, l := range [][]string{r.Lost, r.Duplicates, r.Spurious, r.NotConverged} {
		for _, s := range l {
			var id int
			if _, err := fmt.Sscanf(s, "object %d", &id); err == nil && len(objects) < 5 {
				objects[strconv.Itoa(id)] = true
			}
		}
	}
	var b strings.Builder
	for _, c := range w.up.Log() {
		if objects[strconv.Itoa(c.ID)] {
			fmt.Fprintf(&b, "\n  upstream object %d: %s rev %d dated %s (%s) at %s", c.ID, c.Kind, c.Rev,
				w.up.DateText(c.Updated), c.Updated.UTC().Format(time.RFC3339), c.At.Format("15:04:05.000"))
		}
	}
	for _, d := range w.rcv.Deliveries() {
		for _, ev := range d.Events {
			if ev.Resource == r.Resource && objects[ev.ObjectID] {
				fmt.Fprintf(&b, "\n  delivered object %s: %s %s detected %s, data %s", ev.ObjectID, ev.Type, ev.ID,
					ev.DetectedAt.Format("15:04:05.000"), ev.Data)
			}
		}
	}
	t.Logf("history of the objects at fault in %s:%s", r.Resource, b.String())
}

func requireClean(t *testing.T, w *world, results []Result) {
	t.Helper()
	for _, r := range results {
		t.Log(r.Summary())
		if !r.OK() {
			t.Error(r.String())
			w.explain(t, r)
		}
	}
	if sigs, bodies := w.bad(); sigs > 0 || bodies > 0 {
		t.Errorf("%d bad signatures, %d bad bodies", sigs, bodies)
	}
}
