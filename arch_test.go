// Package warp_test checks rules that span the module: the direction of
// imports that ARCHITECTURE.md draws, and that every package is documented.
package warp_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/warpmesh/warp"

type listedPackage struct {
	ImportPath string
	Name       string
	Doc        string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(out)
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(p.GoFiles) > 0 {
			pkgs = append(pkgs, p)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// ours returns the module-relative path of an import of this module, or "".
func ours(importPath string) string {
	if importPath == module {
		return "."
	}
	if rel, ok := strings.CutPrefix(importPath, module+"/"); ok {
		return rel
	}
	return ""
}

// allowedImports says which of our packages each package may import
// directly (ARCHITECTURE.md, "Packages and the direction of imports").
// Subpackages not listed inherit the rule of their nearest listed parent.
var allowedImports = map[string][]string{
	"syncbus":                     {},
	"wire":                        {"syncbus"},
	"zones":                       {"syncbus"},
	"membership":                  {"wire", "syncbus"},
	"mesh":                        {"membership", "zones", "wire", "syncbus", "mesh/internal/protocol", "internal/"},
	"mesh/internal/protocol":      {"zones", "wire", "syncbus"},
	"bridge":                      {"wire", "syncbus", "internal/"},
	"bridge/nats":                 {"wire", "zones", "syncbus", "bridge", "internal/"},
	"bridge/kafka":                {"wire", "zones", "syncbus", "bridge", "internal/"},
	"bridge/redis":                {"wire", "zones", "syncbus", "bridge", "internal/"},
	"bridge/bridgetest":           {"bridge", "wire", "syncbus", "syncbus/bustest", "internal/"}, // and no broker: brokerDeps
	"sim":                         {"mesh", "membership", "zones", "wire", "syncbus", "internal/"},
	"cmd":                         {"*"},
	"internal/cli":                {"*"},
	"internal/bench":              {"*"},
	"internal/input":              {"sim", "mesh", "wire", "syncbus"}, // no broker even in its tests: TestInputLinksNoBroker
	"examples":                    {"*"},
	"internal":                    {"syncbus", "internal/"},
	"internal/faults":             {},
	"internal/warptest":           {"syncbus"},
	"internal/warptest/nettest":   {"membership", "wire", "internal/"},
	"internal/warptest/frametest": {"wire", "syncbus"},
	"syncbus/bustest":             {"syncbus"},
	"zones/zonestest":             {"zones", "syncbus"},
	"membership/membershiptest":   {"membership", "wire", "syncbus"},
}

// forbiddenDeps are modules no library package may depend on, even
// indirectly: brokers' servers and test fakes belong to tests, sim's
// scenario runner and cmd.
var forbiddenDeps = []string{
	"github.com/nats-io/nats-server/v2",
	"github.com/twmb/franz-go/pkg/kfake",
	"go.uber.org/goleak",
	"testing",
}

// brokerClients must stay out of the mesh and everything below it, so that
// importing the mesh never pulls in Kafka.
var brokerClients = []string{
	"github.com/nats-io/nats.go",
	"github.com/IBM/sarama",
	"github.com/redis/go-redis/v9",
}

// brokerDeps are the brokers' clients, servers and fakes. A package that
// helps tests (its name ends in "test") depends on none of them, unless
// its rule allows it every import: the bridges' shared harnesses are
// imported by each bridge's tests, and must not link the others' brokers.
var brokerDeps = append([]string{"github.com/nats-io/nats-server/v2", "github.com/twmb/franz-go"}, brokerClients...)

func isBrokerDep(dep string) bool {
	for _, bad := range brokerDeps {
		if dep == bad || strings.HasPrefix(dep, bad+"/") {
			return true
		}
	}
	return false
}

func ruleFor(rel string) (string, []string) {
	for p := rel; ; p = path.Dir(p) {
		if allowed, ok := allowedImports[p]; ok {
			return p, allowed
		}
		if p == "." || p == "/" || p == "" {
			return "", nil
		}
	}
}

func isTestHelper(rel string) bool {
	return strings.HasSuffix(path.Base(rel), "test")
}

func TestImportDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := ours(p.ImportPath)
		rule, allowed := ruleFor(rel)
		if rule == "" {
			t.Errorf("%s: no import rule; add it to allowedImports (and to ARCHITECTURE.md)", rel)
			continue
		}
		for _, imp := range p.Imports {
			irel := ours(imp)
			if irel == "" {
				continue
			}
			if isTestHelper(irel) && !isTestHelper(rel) {
				t.Errorf("%s imports the test helper %s: production code never does", rel, irel)
			}
			if !importAllowed(irel, allowed) {
				t.Errorf("%s imports %s; %s may import only %v", rel, irel, rule, allowed)
			}
		}
		if isTestHelper(rel) && !slices.Contains(allowed, "*") {
			for _, dep := range p.Deps {
				if isBrokerDep(dep) {
					t.Errorf("%s, a test helper, depends on the broker %s", rel, dep)
				}
			}
		}
		if rel == "cmd/warp" || strings.HasPrefix(rel, "internal/cli") || rule == "internal/bench" || isTestHelper(rel) || rule == "sim" {
			continue
		}
		for _, dep := range p.Deps {
			for _, bad := range forbiddenDeps {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s depends on %s, which only tests may use", rel, dep)
				}
			}
			if strings.HasPrefix(rel, "bridge") {
				continue
			}
			for _, bad := range brokerClients {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s depends on the broker client %s", rel, dep)
				}
			}
		}
	}
}

// TestInputLinksNoBroker: the test binary of internal/input, which holds
// the fuzz targets of the CLI's and the HTTP API's input, links no broker
// client, server or fake, so that its instrumented build stays cheap
// enough for .ci/run to fuzz it on every run.
func TestInputLinksNoBroker(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "./internal/input").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if isBrokerDep(dep) {
			t.Errorf("internal/input's tests depend on %s", dep)
		}
	}
}

func importAllowed(irel string, allowed []string) bool {
	for _, a := range allowed {
		switch {
		case a == "*":
			return true
		case strings.HasSuffix(a, "/") && strings.HasPrefix(irel, a):
			return true
		case irel == a:
			return true
		}
	}
	return false
}

// pureStd is what the protocol core may import from the standard library:
// nothing that does I/O, starts goroutines behind the caller's back or
// reads a clock (time is there for its types; TestProtocolCoreIsPure
// checks that no clock or timer of it is used).
var pureStd = map[string]bool{
	"context": true, "errors": true, "fmt": true, "math": true, "net/netip": true,
	"slices": true, "sort": true, "strconv": true, "strings": true, "time": true,
}

// clockFuncs are the time package's functions that read the clock or start
// timers.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
	"NewTimer": true, "NewTicker": true, "Tick": true,
}

// TestProtocolCoreIsPure: mesh/internal/protocol does no I/O, starts no
// goroutine and reads no clock (ARCHITECTURE.md): its imports are our
// pure packages and a few standard ones, and its code calls no clock or
// timer and has no go statement.
func TestProtocolCoreIsPure(t *testing.T) {
	const core = module + "/mesh/internal/protocol"
	var found bool
	for _, p := range listPackages(t) {
		if p.ImportPath != core {
			continue
		}
		found = true
		for _, imp := range p.Imports {
			if ours(imp) == "" && !pureStd[imp] {
				t.Errorf("the protocol core imports %s", imp)
			}
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: the protocol core starts a goroutine", fset.Position(n.Pos()))
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && clockFuncs[n.Sel.Name] {
						t.Errorf("%s: the protocol core calls time.%s", fset.Position(n.Pos()), n.Sel.Name)
					}
				}
				return true
			})
		}
	}
	if !found {
		t.Fatalf("package %s not found", core)
	}
}

func TestEveryPackageIsDocumented(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package documentation", p.ImportPath)
		}
	}
}
