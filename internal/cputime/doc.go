// Package cputime reads the CPU time the process has used, for the
// benchmarks that report CPU per unit of work or per second of wall time.
package cputime
