// Package php holds no Go code: examples/php is a site side of the
// domainconfirm protocol written in PHP from PROTOCOL.md and testdata/vectors
// alone (domainconfirm.php, with index.php for `php -S` and conformance.php).
//
// Its tests (php_test.go) run that PHP under `php -S` behind a TLS reverse
// proxy and check it against the Go verifier: tokens confirmed exactly once,
// replays and tokens for another audience, request or time rejected, a wrong
// secret unverified, a server-to-server call with a request-bound token, 50
// concurrent confirmations of one token, a registration probe, and every
// test vector. They need php with the pdo_sqlite and curl extensions:
//
//	apt-get install -y php-cli php-sqlite3 php-curl
//	go test ./examples/php/
//
// Without php they are skipped, except under CI=true, where they fail.
package php
