package wire_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The problem type of every reason is PROTOCOL.md#<reason>. These tests keep
// that promise: every reason the code can produce has a heading there, the
// document's own links resolve, and no two headings share an anchor.

const protocolFile = "../../PROTOCOL.md"

var (
	fence   = regexp.MustCompile("(?s)```.*?```")
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	link    = regexp.MustCompile(`\]\(#([^)]+)\)`)
	notSlug = regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
)

// anchors returns the GitHub anchors of the headings of a Markdown text and
// how often each occurs.
func anchors(t *testing.T, md string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(md, ""), -1) {
		a := strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), ""), " ", "-")
		out[a]++
	}
	return out
}

func TestProtocolAnchors(t *testing.T) {
	data, err := os.ReadFile(protocolFile)
	require.NoError(t, err)
	md := string(data)
	got := anchors(t, md)
	for a, n := range got {
		assert.Equal(t, 1, n, "two headings with the anchor #%s", a)
	}
	for _, m := range link.FindAllStringSubmatch(md, -1) {
		if got[m[1]] == 0 {
			t.Errorf("link to #%s goes nowhere", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`\]\((testdata/[^)#]+)\)`).FindAllStringSubmatch(md, -1) {
		_, err := os.Stat(filepath.Join("../..", m[1]))
		assert.NoError(t, err, "link to %s", m[1])
	}
}

// reasonsInCode collects the reasons passed to wire.WriteProblem, to
// verify's newError and unverified, assigned to a variable named reason, and
// the wire.Reason* constants, from the non-test Go files of dirs.
func reasonsInCode(t *testing.T, dirs ...string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	add := func(fset *token.FileSet, e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(lit.Value)
		require.NoError(t, err)
		if s == "" {
			return
		}
		found[s] = append(found[s], fset.Position(lit.Pos()).String())
	}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, name, nil, 0)
			require.NoError(t, err, name)
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					var fn string
					switch f := n.Fun.(type) {
					case *ast.Ident:
						fn = f.Name
					case *ast.SelectorExpr:
						fn = f.Sel.Name
					}
					switch {
					case fn == "WriteProblem" && len(n.Args) >= 3:
						add(fset, n.Args[2])
					case fn == "newError" && len(n.Args) >= 2:
						add(fset, n.Args[1])
					case fn == "unverified" && len(n.Args) >= 1:
						add(fset, n.Args[0])
					}
				case *ast.AssignStmt:
					for i, l := range n.Lhs {
						if id, ok := l.(*ast.Ident); ok && strings.EqualFold(id.Name, "reason") && i < len(n.Rhs) {
							add(fset, n.Rhs[i])
						}
					}
				case *ast.ValueSpec:
					for i, id := range n.Names {
						if strings.HasPrefix(id.Name, "Reason") && i < len(n.Values) {
							add(fset, n.Values[i])
						}
					}
				}
				return true
			})
		}
	}
	return found
}

func TestProtocolDocumentsEveryReason(t *testing.T) {
	data, err := os.ReadFile(protocolFile)
	require.NoError(t, err)
	got := anchors(t, string(data))
	reasons := reasonsInCode(t, ".", "../../callback", "../../verify")
	require.Contains(t, reasons, "unknown-token", "the scan found nothing: has the code moved?")
	require.Contains(t, reasons, "token-replayed", "the scan found nothing: has the code moved?")
	var names []string
	for r := range reasons {
		names = append(names, r)
	}
	sort.Strings(names)
	t.Logf("%d reasons: %s", len(names), strings.Join(names, " "))
	for _, r := range names {
		if got[r] == 0 {
			t.Errorf("reason %q (used at %v) has no heading in PROTOCOL.md, so its problem type URI lands nowhere", r, reasons[r])
		}
	}
}
