//go:build !unix

package cursor

import (
	"errors"
	"os"
)

// tryLock is not available here: Register fails, and the leases of a
// process that ended expire as they do on PostgreSQL.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locks are not supported on this system")
}
