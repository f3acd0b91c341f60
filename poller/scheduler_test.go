package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// fakeCycler records when its cycles ran; a cycle takes `takes` and fails
// while fail says so.
type fakeCycler struct {
	res   *config.Resource
	takes time.Duration
	fail  func(n int) bool

	mu      sync.Mutex
	starts  []time.Time
	running int
	overlap bool
}

func (f *fakeCycler) Resource() *config.Resource { return f.res }

func (f *fakeCycler) Cycle(ctx context.Context, _ cursor.Lease) (CycleResult, error) {
	f.mu.Lock()
	f.starts = append(f.starts, time.Now())
	n := len(f.starts)
	f.running++
	if f.running > 1 {
		f.overlap = true
	}
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	if f.takes > 0 {
		select {
		case <-time.After(f.takes):
		case <-ctx.Done():
			return CycleResult{}, ctx.Err()
		}
	}
	if f.fail != nil && f.fail(n) {
		return CycleResult{}, errors.New("upstream down")
	}
	return CycleResult{Resource: f.res.Name}, nil
}

func (f *fakeCycler) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(f.starts); i++ {
		out = append(out, f.starts[i].Sub(f.starts[i-1]))
	}
	return out
}

func schedResource(t *testing.T, name, spec string) *config.Resource {
	s, err := config.ParseSchedule(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &config.Resource{Name: name, Schedule: s}
}

func TestSchedulerPollsAtStartThenOnItsGrid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := schedResource(t, "contacts", "1m")
		f := &fakeCycler{res: r}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+time.Second)
		defer cancel()
		NewScheduler([]Cycler{f}, SchedulerOptions{Leases: allLeases{}}).Run(ctx)
		if len(f.starts) == 0 || !f.starts[0].Equal(start) {
			t.Fatalf("first cycle at %v, want at start %v", f.starts, start)
		}
		// After the first, every cycle falls on the resource's phase.
		want := NextRun(r, start)
		for _, s := range f.starts[1:] {
			if !s.Equal(want) {
				t.Fatalf("cycle at %v, want %v", s, want)
			}
			want = want.Add(time.Minute)
		}
		if len(f.starts) < 5 {
			t.Fatalf("%d cycles in 5 minutes of a 1m schedule", len(f.starts))
		}
	})
}

func TestSchedulerJitterIsStableAndSpread(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	seen := map[time.Time]bool{}
	for _, name := range []string{"contacts", "deals", "issues", "companies", "tags"} {
		r := schedResource(t, name, "5m")
		a, b := NextRun(r, now), NextRun(r, now)
		if !a.Equal(b) {
			t.Fatalf("%s: next run %v then %v for the same instant", name, a, b)
		}
		if !a.After(now) || a.Sub(now) > 5*time.Minute {
			t.Fatalf("%s: next run %v not within one interval of %v", name, a, now)
		}
		seen[a] = true
	}
	if len(seen) < 4 {
		t.Errorf("5 resources share %d next-run times: no spread", len(seen))
	}
	cron := schedResource(t, "contacts", "*/5 * * * *")
	next := NextRun(cron, now)
	if next.Before(now.Add(5*time.Minute)) || next.After(now.Add(5*time.Minute+maxCronJitter)) {
		t.Errorf("cron next run %v, want 10:05 plus at most %v", next, maxCronJitter)
	}
}

func TestSchedulerBacksOffAFailingResourceOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := &fakeCycler{res: schedResource(t, "bad", "30s"), fail: func(n int) bool { return n <= 4 }}
		good := &fakeCycler{res: schedResource(t, "good", "30s"), takes: 45 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		NewScheduler([]Cycler{bad, good}, SchedulerOptions{Leases: allLeases{}}).Run(ctx)

		g := bad.gaps()
		if len(g) < 5 {
			t.Fatalf("bad resource gaps %v", g)
		}
		// Failures 1..4 wait at least 30s, 60s, 120s, 240s; then the
		// schedule resumes.
		for i, least := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute} {
			if g[i] < least || g[i] > least+30*time.Second {
				t.Errorf("wait after failure %d = %v, want %v to %v", i+1, g[i], least, least+30*time.Second)
			}
		}
		if g[4] > 30*time.Second {
			t.Errorf("after recovery the wait is %v, want the 30s schedule", g[4])
		}
		if good.overlap {
			t.Error("a slow resource ran two cycles at once")
		}
		// The slow resource polls back to back, never delayed by the
		// failing one: 20 minutes of 45s cycles on a 30s grid.
		if n := len(good.gaps()); n < 18 {
			t.Errorf("slow resource ran %d cycles in 20m", n+1)
		}
	})
}

func TestBackoffCaps(t *testing.T) {
	every := func(spec string) config.Schedule { s, _ := config.ParseSchedule(spec); return s }
	for _, tt := range []struct {
		spec string
		n    int
		want time.Duration
	}{
		{"1m", 1, time.Minute}, {"1m", 3, 4 * time.Minute}, {"1m", 20, MaxBackoff},
		{"1h", 5, time.Hour}, {"*/5 * * * *", 1, MinBackoff}, {"*/5 * * * *", 10, MaxBackoff},
	} {
		if got := backoff(every(tt.spec), tt.n); got != tt.want {
			t.Errorf("backoff(%s, %d) = %v, want %v", tt.spec, tt.n, got, tt.want)
		}
	}
}

// someLeases holds the leases of the resources it lists.
type someLeases struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *someLeases) Lease(name string) (cursor.Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[name] {
		return cursor.Lease{}, false
	}
	return cursor.Lease{Name: name, Holder: "test", Fence: 1}, true
}

func (l *someLeases) take(resource string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held[cursor.ResourceLease(resource)] = true
}

// TestSchedulerPollsOnlyWhatItLeases: a resource whose lease another
// process holds is not polled; once its lease is taken and the scheduler
// woken, it is polled at once.
func TestSchedulerPollsOnlyWhatItLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mine := &fakeCycler{res: schedResource(t, "mine", "1m")}
		theirs := &fakeCycler{res: schedResource(t, "theirs", "1m")}
		leases := &someLeases{held: map[string]bool{}}
		leases.take("mine")
		s := NewScheduler([]Cycler{mine, theirs}, SchedulerOptions{Leases: leases})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()

		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if len(theirs.starts) != 0 || len(mine.starts) < 5 {
			t.Fatalf("after 5m: %d cycles of a leased resource, %d of one leased elsewhere; want 5 or more, and 0",
				len(mine.starts), len(theirs.starts))
		}
		leases.take("theirs")
		taken := time.Now()
		s.Wake("theirs")
		synctest.Wait()
		if len(theirs.starts) != 1 || !theirs.starts[0].Equal(taken) {
			t.Fatalf("cycles of the resource after its lease was taken: %v, want one at once (%v)", theirs.starts, taken)
		}
		cancel()
		<-done
	})
}

// TestSchedulerSpreadsTheFirstCyclesOfMany: beyond StartRate resources,
// the first cycles begin over N/StartRate seconds, about StartRate a
// second, rather than all at once; fewer begin at once.
func TestSchedulerSpreadsTheFirstCyclesOfMany(t *testing.T) {
	for _, n := range []int{StartRate, 3 * StartRate} {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			var cs []*fakeCycler
			var cyclers []Cycler
			for i := range n {
				c := &fakeCycler{res: schedResource(t, fmt.Sprint("r", i), "1m")}
				cs, cyclers = append(cs, c), append(cyclers, c)
			}
			s := NewScheduler(cyclers, SchedulerOptions{Leases: allLeases{}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx) }()
			spread := time.Duration(0)
			if n > StartRate {
				spread = time.Duration(n) * time.Second / StartRate
			}
			time.Sleep(spread + time.Second)
			synctest.Wait()
			perSecond := map[time.Duration]int{}
			for _, c := range cs {
				if len(c.starts) == 0 {
					t.Fatalf("N=%d: %s began no cycle in its first %v", n, c.res.Name, spread+time.Second)
				}
				at := c.starts[0].Sub(start)
				if at > spread {
					t.Errorf("N=%d: %s began at %v, after %v", n, c.res.Name, at, spread)
				}
				perSecond[at.Truncate(time.Second)]++
			}
			for sec, k := range perSecond {
				if k > 2*StartRate {
					t.Errorf("N=%d: %d first cycles began in second %v; want about %d", n, k, sec, StartRate)
				}
			}
			if n <= StartRate && perSecond[0] != n {
				t.Errorf("N=%d: %d began at once, want all", n, perSecond[0])
			}
			cancel()
			<-done
		})
	}
}

func (l *someLeases) drop(resource string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, cursor.ResourceLease(resource))
}

// TestSchedulerResumesWhatMissedACycle: after its leases lapsed for a
// while and were taken again, the scheduler polls at once the resource
// whose cycle came due meanwhile, and leaves the other on its schedule,
// so that a late renewal does not start every resource at once.
func TestSchedulerResumesWhatMissedACycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeCycler{res: schedResource(t, "a", "1m")}
		b := &fakeCycler{res: schedResource(t, "b", "1m")}
		leases := &someLeases{held: map[string]bool{}}
		leases.take("a")
		leases.take("b")
		s := NewScheduler([]Cycler{a, b}, SchedulerOptions{Leases: leases})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		synctest.Wait() // both poll at start

		// due comes due first: the lapse covers its tick, not early's.
		due, early := a, b
		if NextRun(b.res, time.Now()).Before(NextRun(a.res, time.Now())) {
			due, early = b, a
		}
		leases.drop("a")
		leases.drop("b")
		time.Sleep(time.Until(NextRun(due.res, time.Now())) + time.Second)
		if NextRun(early.res, time.Now().Add(-time.Second)).Before(time.Now()) {
			t.Skip("the two resources' ticks are within a second of each other")
		}
		synctest.Wait()
		leases.take("a")
		leases.take("b")
		taken := time.Now()
		s.Resume([]string{"a", "b"})
		synctest.Wait()
		if len(due.starts) != 2 || !due.starts[1].Equal(taken) {
			t.Errorf("cycles of the resource that missed one: %v, want a second at once (%v)", due.starts, taken)
		}
		if len(early.starts) != 1 {
			t.Errorf("cycles of the resource that missed none: %v, want only the first until its tick", early.starts)
		}
		time.Sleep(time.Until(NextRun(early.res, time.Now())))
		synctest.Wait()
		if len(early.starts) != 2 {
			t.Errorf("cycles of the resource that missed none, at its tick: %v, want 2", early.starts)
		}
		cancel()
		<-done
	})
}

// TestSchedulerSetWhileRunning adds, replaces and removes resources of a
// running scheduler; a resource removed in a cycle and added back never
// has two cycles at once.
func TestSchedulerSetWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeCycler{res: schedResource(t, "a", "1m")}
		slow := &fakeCycler{res: schedResource(t, "slow", "1m"), takes: 50 * time.Second}
		s := NewScheduler([]Cycler{a, slow}, SchedulerOptions{Leases: allLeases{}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		time.Sleep(10 * time.Second)

		// a gets a new cycler, on a 30s schedule; b arrives; slow goes
		// in the middle of a cycle and comes back at once.
		a2 := &fakeCycler{res: schedResource(t, "a", "30s")}
		b := &fakeCycler{res: schedResource(t, "b", "1m")}
		s.Set([]Cycler{a2, b})
		slow2 := &fakeCycler{res: slow.res, takes: 50 * time.Second}
		s.Set([]Cycler{a2, b, slow2})
		if got := s.Resources(); !slices.Equal(got, []string{"a", "b", "slow"}) {
			t.Fatalf("resources %v, want [a b slow]", got)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		cancel()
		<-done

		if len(a.starts) != 1 {
			t.Errorf("the old cycler of a ran %d cycles, want the first only", len(a.starts))
		}
		if n := len(a2.starts); n < 9 {
			t.Errorf("a's new cycler ran %d cycles in 5m on a 30s schedule, want 9 or more", n)
		}
		if len(b.starts) < 5 {
			t.Errorf("b, added, ran %d cycles in 5m of a 1m schedule", len(b.starts))
		}
		// slow2's first cycle waits for slow's cycle, cut at the removal
		// (at 10s), to end.
		if len(slow2.starts) == 0 {
			t.Fatal("slow, added back, never ran")
		}
		if first := slow2.starts[0]; first.Before(slow.starts[0].Add(10 * time.Second)) {
			t.Errorf("slow added back ran at %v, before its removed loop ended", first)
		}
	})
}

// TestSchedulerStateAndBetween: State says when a cycle runs and when the
// next is due; Between runs its function between two cycles, never
// during one, and refuses a resource this process does not poll.
func TestSchedulerStateAndBetween(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := schedResource(t, "contacts", "1m")
		f := &fakeCycler{res: r, takes: 10 * time.Second}
		s := NewScheduler([]Cycler{f}, SchedulerOptions{Leases: allLeases{}})
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Between(ctx, "contacts", func(cursor.Lease) error { return nil }); !errors.Is(err, ErrNotPolledHere) {
			t.Errorf("Between before Run: %v, want ErrNotPolledHere", err)
		}
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		synctest.Wait()
		st, ok := s.State("contacts")
		if !ok || !st.Polling || !st.Since.Equal(start) {
			t.Errorf("state during the first cycle = %+v, %v; want polling since %v", st, ok, start)
		}
		var ranAt time.Time
		err := s.Between(ctx, "contacts", func(l cursor.Lease) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.running != 0 {
				t.Error("Between's function runs during a cycle")
			}
			if l.Name != cursor.ResourceLease("contacts") {
				t.Errorf("Between's function got lease %+v", l)
			}
			ranAt = time.Now()
			return errors.New("from fn")
		})
		if err == nil || err.Error() != "from fn" {
			t.Errorf("Between returned %v, want fn's error", err)
		}
		if !ranAt.Equal(start.Add(10 * time.Second)) {
			t.Errorf("Between's function ran at %v, want when the first cycle ended, %v", ranAt, start.Add(10*time.Second))
		}
		st, _ = s.State("contacts")
		if st.Polling || !st.Next.Equal(NextRun(r, start.Add(10*time.Second))) {
			t.Errorf("state between cycles = %+v, want the next run at %v", st, NextRun(r, start.Add(10*time.Second)))
		}
		// The task did not start a cycle: the next is still on schedule.
		time.Sleep(time.Second)
		if n := len(f.gaps()); n != 0 {
			t.Errorf("%d more cycles after Between, want none before the next run", n)
		}
		if _, ok := s.State("nope"); ok {
			t.Error("State of an unknown resource says ok")
		}
		if err := s.Between(ctx, "nope", func(cursor.Lease) error { return nil }); !errors.Is(err, ErrNotPolledHere) {
			t.Errorf("Between of an unknown resource: %v, want ErrNotPolledHere", err)
		}
		cancel()
		<-done
	})
}

// noLeases holds no lease: another process polls everything.
type noLeases struct{}

func (noLeases) Lease(string) (cursor.Lease, bool) { return cursor.Lease{}, false }

func TestSchedulerBetweenRefusesWithoutTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCycler{res: schedResource(t, "contacts", "1m")}
		s := NewScheduler([]Cycler{f}, SchedulerOptions{Leases: noLeases{}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		synctest.Wait()
		ran := false
		err := s.Between(ctx, "contacts", func(cursor.Lease) error { ran = true; return nil })
		if !errors.Is(err, ErrNotPolledHere) || ran {
			t.Errorf("Between without the lease: %v (ran %v), want ErrNotPolledHere and fn not run", err, ran)
		}
		cancel()
		<-done
	})
}
