package reliability

import (
	"fmt"
	"testing"
	"time"
)

// positionalPaging are the url and pagination lines of a resource that
// walks a listing by position — page numbers, or next links that carry
// one — for each of the three pagination types that do, over path.
func positionalPaging(kind, path, query string) string {
	switch kind {
	case "page":
		return fmt.Sprintf("    url: %s?%s\n    pagination: { type: page, limit: 25, max_pages: 500 }", path, query)
	case "link_header":
		return fmt.Sprintf("    url: %s?%s&page=1&limit=25\n    pagination: { type: link_header, max_pages: 500 }", path, query)
	case "next_url":
		return fmt.Sprintf("    url: %s?%s&page=1&limit=25\n    pagination: { type: next_url, next_url: .next_url, max_pages: 500 }", path, query)
	}
	panic("unknown pagination " + kind)
}

// TestPositionalWalks: with page, link_header and next_url paging (page
// numbers, in the body's next URL or the Link header) over a listing in
// updated order, every edit ahead of a walk moves a record to the end and
// every delete takes one out: the records after it shift back, and the one
// shifted onto the page just read is missed by the walk. The listings are
// slow (30 ms a page) and edited every 15 ms (creates, updates, deletes,
// bursts). snap lists everything (deletes: snapshot, with item_url): a
// record a walk missed must not be reported deleted — it is looked up and
// found. inc asks for what changed since the watermark: a record a walk
// missed is read again within the lookback. Asserted: nothing lost,
// duplicated or spurious (no delete of a live record, no created or
// updated event for a record that did not change), converged; and that
// walks did miss records (lookups found some).
func TestPositionalWalks(t *testing.T) {
	t.Parallel()
	for i, kind := range []string{"page", "link_header", "next_url"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fig := newFigures(t, "2. upstream: positional paging ("+kind+") under heavy edits")
			fig.TrialsOf = "walks"
			w := newWorld(t, UpstreamOptions{Seed: 30 + uint64(i), RealTime: true, Initial: 300, PageDelay: 30 * time.Millisecond})
			cfg := w.config(setup{
				Inc: positionalPaging(kind, "/a/items", "since=${gmtDate:"+DateFormat+"}&include_deleted=true&order=updated") +
					"\n    filter: '.deleted != true'",
				Snap: positionalPaging(kind, "/b/items", "order=updated") + "\n    item_url: /b/items/${id}",
			})
			p := startReady(t, cfg)
			waitCleanOf(t, w, []string{"inc", "snap"}, 40*time.Second)

			// 8 s of edits, longer on a machine so loaded that no walk
			// has missed a record yet (up to 30 s): the test shows
			// something only once one has.
			stop := w.mutate(15*time.Millisecond, 0)
			pause(8 * time.Second)
			for end := time.Now().Add(22 * time.Second); time.Now().Before(end); pause(time.Second) {
				if p.metrics()[series("pollhook_lookups_total", "resource", "snap", "outcome", "found")] > 0 {
					break
				}
			}
			stop()
			m := p.metrics()
			found := m[series("pollhook_lookups_total", "resource", "snap", "outcome", "found")]
			gone := m[series("pollhook_lookups_total", "resource", "snap", "outcome", "gone")]
			fig.Trials = int(p.polls("snap", "ok") + p.polls("inc", "ok"))
			w.finish(t, p, cfg, fig, 40*time.Second, "inc", "snap")
			if found == 0 {
				t.Error("no walk missed a record that a lookup then found: the edits staged no shift, and the test shows nothing")
			}
			fig.Faults = int(found)
			fig.Note = fmt.Sprintf("updated order, 30 ms a page, edits every 15 ms for 8 s or more: snap looked up %g records its walks missed that still existed (kept) and %g that were gone (deleted)", found, gone)
		})
	}
}
