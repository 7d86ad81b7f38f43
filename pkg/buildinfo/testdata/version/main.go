// Command version prints buildinfo's --version line, for buildinfo's test.
package main

import (
	"os"

	"github.com/sfsync/sfsync/pkg/buildinfo"
)

func main() {
	os.Exit(buildinfo.Exit("version", buildinfo.Args("version", "test", os.Args[1:], &struct{}{}, os.Stdout), os.Stderr))
}
