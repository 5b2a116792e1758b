// Command domainconfirm is the operator's tool for domainconfirm: it makes
// shared secrets, probes a customer's registration, checks a registry file
// and decodes tokens.
//
// Usage:
//
//	domainconfirm secret
//	domainconfirm probe <origin> -secret-file FILE -audience ORIGIN [-url URL] [-timeout D]
//	domainconfirm registry check FILE
//	domainconfirm token inspect VALUE
//
// "domainconfirm secret" prints a new shared secret on one line
// (callback.GenerateSecret). It is the only command that prints a secret;
// no command takes one on its command line, where shell history and ps
// would show it.
//
//	$ (umask 077; domainconfirm secret > secret.txt)
//
// "domainconfirm probe" runs the registration probe (verify.Verifier.Probe,
// PROTOCOL.md section 10.3) against the origin's confirmation URL (-url; by
// default <origin>/.well-known/domainconfirm), as the API with the audience
// -audience would, and prints one line per problem and per warning, each with
// its stable code. -secret-file holds the registration's secrets, one per
// line, in the order they are registered: one line break (LF or CRLF) is
// removed from each line, and a line that is then not exactly a valid secret
// is refused by its number, never shown. -audience is required: a site
// answers a probe only for an API it is configured with, so a wrong default
// would be reported as a wrong secret. -timeout is the deadline of the
// exchange (default 3s).
//
//	$ domainconfirm probe https://shop.example -secret-file secret.txt -audience https://api.example
//	origin        https://shop.example
//	url           https://shop.example/.well-known/domainconfirm
//	address       203.0.113.7
//	status        200
//	duration      48ms
//	clock skew    0s
//	secrets held  1 of 1: line 1 of secret.txt
//	OK: the registration works
//
// The flags -unsafe-allow-private-addresses (loopback and private
// addresses, on any port), -ca-file PEM (trust these certificates instead
// of the system roots) and -port N (allow port N besides 443; repeatable)
// are for testing only, against sites on loopback or behind a private CA: a
// registration that passes with them may fail for a production verifier.
//
// "domainconfirm registry check" validates a registry file in the format
// verify.LoadRegistryFile reads and prints the number of origins; an error
// names the bad entry.
//
// "domainconfirm token inspect" decodes a Domain-Confirm header value
// ("v1 https://shop.example dct_...") or a bare token and prints the claimed
// origin, the kind, the key id, issued_at and expires_at, the lifetime, the
// action label of an action token and whether it has expired. It never
// prints the token, its nonce or its MAC, and it does not check the MAC,
// which needs the secret.
//
// Every command explains itself with -h. The exit status is 0 on success
// (a probe with warnings only is a success), 1 when the check failed (the
// probe found a problem, the registry file is invalid, the token is
// malformed), and 2 on a usage error (bad arguments or flags, an unreadable
// or invalid secret file or CA file).
package main
