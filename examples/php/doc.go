// Package php holds no Go code: examples/php is a site side of the
// domainconfirm protocol written in PHP from PROTOCOL.md and testdata/vectors
// alone (domainconfirm.php, with index.php for `php -S` and conformance.php).
//
// Its tests (php_test.go) run that PHP under `php -S` behind a TLS reverse
// proxy and check it against the Go verifier: signed tokens confirmed exactly
// once; tokens for another audience or request, expired or MACed with a
// secret the API does not hold refused by the verifier itself, with no
// call-back; the local level verify.IssuedToken; a site with two APIs, each
// with its own secrets; every step of a secret rotation; a server-to-server
// call with a request-bound token; 50 concurrent confirmations of one token;
// registration probes; and every test vector. They need php with the
// pdo_sqlite and curl extensions:
//
//	apt-get install -y php-cli php-sqlite3 php-curl
//	go test ./examples/php/
//
// Without php they are skipped, except under CI=true, where they fail.
package php
