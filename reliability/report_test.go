package reliability

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// figures are one scenario's numbers for RELIABILITY.md.
type figures struct {
	Scenario string
	// Trials counts the scenario's repetitions (kills, fault episodes,
	// outages, configs …), as TrialsOf names them.
	Trials   int
	TrialsOf string
	Faults   int
	Changes  int
	Events   int

	Lost, Duplicates, Redeliveries int
	Spurious, NotConverged         int
	BadSignatures                  int

	// Note is a short remark for the table.
	Note     string
	Duration time.Duration
	Failed   bool
	Skipped  bool
}

var (
	figMu      sync.Mutex
	allFigures []*figures
)

// newFigures returns the figures of the scenario t runs; they are
// recorded, with t's outcome and duration, when t ends.
func newFigures(t *testing.T, scenario string) *figures {
	f := &figures{Scenario: scenario}
	begin := time.Now()
	t.Cleanup(func() {
		f.Duration = time.Since(begin)
		f.Failed, f.Skipped = t.Failed(), t.Skipped()
		figMu.Lock()
		allFigures = append(allFigures, f)
		figMu.Unlock()
	})
	return f
}

// add counts the checker's results for w: Changes is the upstream's
// writes, Events the distinct event ids of all resources.
func (f *figures) add(w *world, results []Result) {
	var s Sum
	for _, r := range results {
		s.Add(r)
	}
	f.Changes = len(w.up.Log())
	f.Events += s.Events
	f.Lost += s.Lost
	f.Duplicates += s.Duplicates
	f.Redeliveries += s.Redeliveries
	f.Spurious += s.Spurious
	f.NotConverged += s.NotConverged
	sigs, _ := w.bad()
	f.BadSignatures += sigs
}

// Markers of the generated part of the report file.
const (
	beginMarker = "<!-- figures:begin -->"
	endMarker   = "<!-- figures:end -->"
)

// writeReport replaces the part of the Markdown file at path between the
// figures markers with this run's table.
func writeReport(path string, total time.Duration) error {
	if !filepath.IsAbs(path) {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		path = filepath.Join(root, path)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", path, beginMarker, endMarker)
	}
	out := s[:i+len(beginMarker)] + "\n" + table(total) + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}

// table renders the recorded figures as Markdown.
func table(total time.Duration) string {
	figMu.Lock()
	defer figMu.Unlock()
	mode := "default"
	if *long {
		mode = "-long"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Last run: %s, %s mode, %s %s/%s, %d CPUs, up to %s scenarios at a time, %s in all.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), mode, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), flag.Lookup("test.parallel").Value, total.Round(time.Second))
	b.WriteString("| scenario | trials | faults injected | upstream writes | events | lost | duplicate events | redeliveries | spurious | not converged | bad signatures | time | result | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	sorted := slices.Clone(allFigures)
	// Numbered scenarios in their order, then any others; by name within
	// a number, since scenarios run side by side and end in any order.
	sort.Slice(sorted, func(i, j int) bool {
		ri, rj := scenarioRank(sorted[i].Scenario), scenarioRank(sorted[j].Scenario)
		if ri != rj {
			return ri < rj
		}
		return sorted[i].Scenario < sorted[j].Scenario
	})
	for _, f := range sorted {
		result := "pass"
		switch {
		case f.Skipped:
			result = "skipped"
		case f.Failed:
			result = "**FAIL**"
		}
		trials := "—"
		switch {
		case f.Trials == 1 && singular[f.TrialsOf] != "":
			trials = "1 " + singular[f.TrialsOf]
		case f.Trials > 0:
			trials = fmt.Sprintf("%d %s", f.Trials, f.TrialsOf)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n",
			f.Scenario, trials, f.Faults, f.Changes, f.Events, f.Lost, f.Duplicates, f.Redeliveries,
			f.Spurious, f.NotConverged, f.BadSignatures, f.Duration.Round(100*time.Millisecond), result,
			strings.ReplaceAll(tempPath.ReplaceAllString(f.Note, "$1"), "|", "\\|"))
	}
	return b.String()
}

// scenarioRank orders scenarios by their leading number; others last.
func scenarioRank(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = 10*n + int(c-'0')
	}
	if n == 0 {
		return 1 << 30
	}
	return n
}

// singular names one trial of each kind the scenarios count.
var singular = map[string]string{
	"bodies": "body", "glitches": "glitch", "outages": "outage", "410s": "410", "starts": "start",
	"kills": "kill", "configs": "config", "records": "record", "episodes": "episode", "failed cycles": "failed cycle",
	"walks": "walk",
}

// tempPath matches a temporary directory's path to a file, which a note
// shortens to the file's name.
var tempPath = regexp.MustCompile(`/tmp/\S*/([^/\s]+)`)

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
