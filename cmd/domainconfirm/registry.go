package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

const registryCheckHelp = `Usage:
  domainconfirm registry check FILE

Validates a registry file as the API loads it with verify.LoadRegistryFile:

  {"origins": [{"origin": "https://shop.example",
                "confirm_url": "https://shop.example/.well-known/domainconfirm",
                "secrets": ["dcsec_..."]}]}

(confirm_url may be omitted). Every entry is checked: its origin, its
confirmation URL and its secrets, and no origin twice. On success it prints
the number of origins; otherwise the error names the bad entry (counting from
1) and what is wrong with it, never a secret.

Exit status: 0 the file is valid; 1 it is not (or cannot be read); 2 usage error.
`

func cmdRegistryCheck(args []string, stdout, stderr io.Writer) int {
	const name = "registry check"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	pos, code, ok := parseFlags(fs, name, registryCheckHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, name, fmt.Sprintf("want one registry file, got %d arguments", len(pos)))
	}
	path := pos[0]
	reg, err := verify.LoadRegistryFile(path)
	if err != nil { // names the file and the entry, never a secret
		return failure(stderr, name, err.Error())
	}
	n, err := countOrigins(path, reg)
	if err != nil {
		return failure(stderr, name, err.Error())
	}
	fmt.Fprintf(stdout, "%s: %s\n", printable(path), plural(n, "origin"))
	if n == 0 {
		fmt.Fprintf(stderr, "domainconfirm registry check: warning: %s registers no origin: every request would be refused as unknown-origin\n", printable(path))
	}
	return exitOK
}

// countOrigins counts the entries of a registry file that LoadRegistryFile
// accepted as reg (a MemoryRegistry does not say how many it holds), and
// checks that reg holds each: the file could change between two reads.
func countOrigins(path string, reg *verify.MemoryRegistry) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("registry file: %w", err)
	}
	var f struct {
		Origins []struct {
			Origin string `json:"origin"`
		} `json:"origins"`
	}
	changed := fmt.Errorf("registry file %s changed while it was checked: run the check again", path)
	if json.Unmarshal(data, &f) != nil {
		return 0, changed
	}
	for _, o := range f.Origins {
		origin, err := wire.NormalizeOrigin(o.Origin)
		if err != nil {
			return 0, changed
		}
		if _, err := reg.Lookup(context.Background(), origin); err != nil {
			return 0, changed
		}
	}
	return len(f.Origins), nil
}
