// Command warp is the operator's tool for Warp: run a mesh node, publish and
// watch invalidations, list members, simulate and benchmark. See "warp help".
package main

import (
	"os"

	"github.com/warpmesh/warp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
