// Package testenv gives integration tests real services: a JetStream broker
// (in-process, or Debian's nats-server binary for the 2.9 line) and MySQL
// (TEST_MYSQL_DSN, else a testcontainers MySQL 8 when a Docker engine
// answers, else a private mariadbd or mysqld from PATH), one fresh database
// per test. Under CI=true a missing service fails the test; it never skips.
//
// Packages using MySQL call testenv.Main from TestMain so that a private
// server started for them stops when the test binary ends.
package testenv

import (
	"os"
	"testing"
)

// Main runs the tests and then stops whatever the package's tests started.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests and stops the shared services, for a TestMain that
// has more to clean up; it returns the exit code.
func Run(m *testing.M) int {
	code := m.Run()
	stopShared()
	return code
}

// unavailable fails under CI and skips elsewhere: a newcomer without the
// service sees why, CI never passes without it.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("required test service unavailable under CI: "+format, args...)
	}
	t.Skipf("test service unavailable (set CI=true to make this fatal): "+format, args...)
}
