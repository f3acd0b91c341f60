// Package pgtest gives tests a PostgreSQL database of their own, on the
// server the environment names: POLLHOOK_TEST_POSTGRES, a connection
// string to a database the tests may create databases from (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, the trust
// auth of a local server). Without a server that answers, the tests that
// ask for one are skipped, saying why.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// DefaultServer is the server the tests use when POLLHOOK_TEST_POSTGRES
// is not set.
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Server returns the connection string of the server the tests use.
func Server() string {
	if s := os.Getenv("POLLHOOK_TEST_POSTGRES"); s != "" {
		return s
	}
	return DefaultServer
}

var (
	once    sync.Once
	admin   *sql.DB
	skipWhy string
)

// connect opens the server once for every test of the process.
func connect() {
	db, err := sql.Open("pgx", Server())
	if err != nil {
		skipWhy = fmt.Sprintf("no PostgreSQL for the tests: %v (set POLLHOOK_TEST_POSTGRES)", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		skipWhy = fmt.Sprintf("no PostgreSQL answers at %s: %v (start one, or set POLLHOOK_TEST_POSTGRES)", redacted(Server()), err)
		return
	}
	admin = db
}

// Available reports whether a server answers, and if not why.
func Available() (bool, string) {
	once.Do(connect)
	return admin != nil, skipWhy
}

// Required reports whether the environment says a server must be there
// (POLLHOOK_REQUIRE_POSTGRES=1, as CI sets it once it has started one):
// then a test that finds none fails instead of skipping.
func Required() bool { return os.Getenv("POLLHOOK_REQUIRE_POSTGRES") == "1" }

// DSN creates a fresh, empty database for t and returns its connection
// string; the database is dropped when t ends. It skips t when no server
// answers (fails it when one is Required).
func DSN(t testing.TB) string {
	t.Helper()
	if ok, why := Available(); !ok {
		if Required() {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	name := "pollhook_test_" + strings.ToLower(rand.Text()[:12])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(Server())
	if err != nil || u.Scheme == "" {
		// key=value pairs: a later dbname wins.
		return Server() + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// Schema creates a fresh schema in the database dsn points at and returns
// dsn with its search_path set to it: a store of its own, cheaper than a
// database. The schema is dropped when t ends.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "s_" + strings.ToLower(rand.Text()[:12])
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE")
	})
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " search_path=" + name
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "the server of POLLHOOK_TEST_POSTGRES"
	}
	u.User = url.User(u.User.Username())
	return u.Redacted()
}
