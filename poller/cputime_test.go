package poller

import (
	"time"

	"github.com/pollhook/pollhook/internal/cputime"
)

// processCPU is the CPU time the process has used (0 where it is not read).
func processCPU() time.Duration { return cputime.Process() }
