package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/domainconfirm/domainconfirm/callback"
)

const secretHelp = `Usage:
  domainconfirm secret

Prints a new shared secret on one line: "dcsec_" and 32 bytes from
crypto/rand in unpadded base64url (callback.GenerateSecret). Register it with
the API (the registry) and configure the same secret at the site, for this one
API only. It is the only command that ever prints a secret: redirect it to a
file that only you can read, for example

  (umask 077; domainconfirm secret > secret.txt)

A file made this way is what 'domainconfirm probe -secret-file' reads.
`

func cmdSecret(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("secret", flag.ContinueOnError)
	pos, code, ok := parseFlags(fs, "secret", secretHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "secret", "takes no arguments")
	}
	if _, err := fmt.Fprintln(stdout, callback.GenerateSecret()); err != nil {
		fmt.Fprintf(stderr, "domainconfirm secret: writing the secret: %v\n", err)
		return exitFail
	}
	return exitOK
}
