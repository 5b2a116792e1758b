<?php
/**
 * A tiny site for `php -S`, configured from the environment:
 *
 *   DOMAINCONFIRM_ORIGIN=https://shop.example \
 *   DOMAINCONFIRM_AUDIENCE=https://api.example DOMAINCONFIRM_SECRETS=dcsec_… \
 *   DOMAINCONFIRM_DB=/var/lib/shop/domainconfirm.sqlite \
 *   php -S 127.0.0.1:8080 examples/php/index.php
 *
 * Routes:
 *   POST /.well-known/domainconfirm  the confirmation handler (answers the APIs' verifiers, and their probes)
 *   POST /domainconfirm/token        the token handler for this site's pages (when DOMAINCONFIRM_TOKEN_AUDIENCES is set)
 *   POST /test/issue, /test/call     TEST ONLY, when DOMAINCONFIRM_TEST_ENDPOINTS=1 (see below)
 *
 * Environment:
 *   DOMAINCONFIRM_ORIGIN     this site's origin, as registered with the APIs (behind a TLS proxy: the proxy's origin)
 *   One API:
 *   DOMAINCONFIRM_AUDIENCE   the API's origin
 *   DOMAINCONFIRM_SECRETS    the 1 to 8 secrets registered with it, separated by commas, the one tokens are MACed with first
 *   Several APIs (instead of the two above):
 *   DOMAINCONFIRM_APIS       a JSON object: each API's origin => its own list of secrets, in the order
 *                            confirmation requests are authenticated, e.g.
 *                            {"https://api.example":["dcsec_…"],"https://maps.example":["dcsec_…","dcsec_…"]}
 *   DOMAINCONFIRM_DB         the SQLite token store, required, in a directory only the site's user can write
 *   DOMAINCONFIRM_TOKEN_AUDIENCES  API origins the token handler issues action tokens for, separated by commas;
 *                            each must be one of the APIs above
 *   DOMAINCONFIRM_CAINFO     a PEM file of CAs curl trusts for API calls instead of the system's (CURLOPT_CAINFO)
 *   DOMAINCONFIRM_TEST_ENDPOINTS=1  turns on /test/issue and /test/call. They hand out tokens to anyone
 *                            who asks and let the caller move the issuing clock: for tests only, never in production.
 *   DOMAINCONFIRM_TEST_NOW   with the test endpoints on: the site's clock stands still at these Unix seconds
 *                            (to replay the test vectors of testdata/vectors/site_handler.json). Tests only.
 *
 * Run several requests at once (the API calls this site back while /test/call
 * waits for the API) with PHP_CLI_SERVER_WORKERS=4.
 */

declare(strict_types=1);

require __DIR__ . '/domainconfirm.php';

use DomainConfirm\ApiClient;
use DomainConfirm\Refused;
use DomainConfirm\Request;
use DomainConfirm\Response;
use DomainConfirm\Site;
use DomainConfirm\SqliteTokenStore;
use DomainConfirm\StoreException;
use DomainConfirm\Wire;

/** A comma-separated environment variable as a list; nothing is trimmed. */
function envList(string $name): array
{
    $v = getenv($name);
    return $v === false || $v === '' ? [] : explode(',', $v);
}

/**
 * The APIs and their secrets: DOMAINCONFIRM_APIS, or DOMAINCONFIRM_AUDIENCE
 * with DOMAINCONFIRM_SECRETS. Site checks every value; nothing is trimmed.
 */
function apis(): array
{
    $json = getenv('DOMAINCONFIRM_APIS');
    $audience = getenv('DOMAINCONFIRM_AUDIENCE');
    if (is_string($json) && $json !== '') {
        if (is_string($audience) && $audience !== '') {
            throw new \RuntimeException('set DOMAINCONFIRM_APIS or DOMAINCONFIRM_AUDIENCE with DOMAINCONFIRM_SECRETS, not both');
        }
        $apis = json_decode($json, true);
        if (!is_array($apis) || array_is_list($apis)) {
            throw new \RuntimeException('DOMAINCONFIRM_APIS is not a JSON object of API origin => list of secrets');
        }
        return $apis;
    }
    if (!is_string($audience) || $audience === '') {
        throw new \RuntimeException('set DOMAINCONFIRM_AUDIENCE and DOMAINCONFIRM_SECRETS, or DOMAINCONFIRM_APIS');
    }
    return [$audience => envList('DOMAINCONFIRM_SECRETS')];
}

/** The site, with its clock moved by $clockOffset seconds (test endpoints only). */
function site(int $clockOffset = 0, ?int $ttl = null): Site
{
    // Required, and in a directory only this site's user can write: a token
    // store others can write to lets them mint confirmations.
    $db = getenv('DOMAINCONFIRM_DB');
    if (!is_string($db) || $db === '') {
        throw new \RuntimeException('set DOMAINCONFIRM_DB to the token database path, in a directory private to this site');
    }
    $options = ['audiences' => envList('DOMAINCONFIRM_TOKEN_AUDIENCES')];
    $fixed = getenv('DOMAINCONFIRM_TEST_NOW');
    if (getenv('DOMAINCONFIRM_TEST_ENDPOINTS') === '1' && is_string($fixed) && ctype_digit($fixed)) {
        $options['clock'] = static fn (): int => (int) $fixed + $clockOffset;
    } elseif ($clockOffset !== 0) {
        $options['clock'] = static fn (): int => time() + $clockOffset;
    }
    if ($ttl !== null) {
        $options['ttl'] = $ttl;
    }
    return new Site((string) getenv('DOMAINCONFIRM_ORIGIN'), apis(), new SqliteTokenStore($db), $options);
}

/** The JSON object a test endpoint was POSTed, or a 400 answer. */
function testInput(): array|Response
{
    $r = Request::fromGlobals(65536);
    if ($r->method !== 'POST' || !$r->isJson()) {
        return Response::problem(400, 'malformed-request', 'POST a JSON object');
    }
    $in = json_decode((string) $r->body, true);
    return is_array($in) ? $in : Response::problem(400, 'malformed-request', 'POST a JSON object');
}

/**
 * POST /test/issue {"kind": "action", "audience", "action", "subject"?, "ttl"?, "clock_offset"?}
 *               or {"kind": "request", "url", "method", "body", "subject"?, "ttl"?, "clock_offset"?}
 * → {"header": "v1 <origin> <token>", "expires_at": …}. clock_offset moves the
 * clock the token is issued at, so a test can issue an already expired token.
 */
function testIssue(): Response
{
    $in = testInput();
    if ($in instanceof Response) {
        return $in;
    }
    $site = site((int) ($in['clock_offset'] ?? 0), isset($in['ttl']) ? (int) $in['ttl'] : null);
    $subject = (string) ($in['subject'] ?? '');
    $issued = ($in['kind'] ?? '') === 'request'
        ? $site->issueForRequest((string) ($in['url'] ?? ''), (string) ($in['method'] ?? 'GET'), (string) ($in['body'] ?? ''), $subject)
        : $site->issueForAction((string) ($in['audience'] ?? ''), (string) ($in['action'] ?? ''), $subject);
    return Response::json(200, Wire::encodeJson(['header' => $issued->header, 'expires_at' => $issued->expiresAt]));
}

/**
 * POST /test/call {"method", "url", "body", "headers"?, "subject"?, "send_body"?}
 * → {"status": …, "body": …}: the site calls the API server to server with a
 * token bound to method, url and body. With send_body, it sends that body
 * instead of the one bound (to show the API refuses it).
 */
function testCall(): Response
{
    $in = testInput();
    if ($in instanceof Response) {
        return $in;
    }
    $site = site();
    $caInfo = getenv('DOMAINCONFIRM_CAINFO') ?: null;
    $client = new ApiClient($site, $caInfo, [CURLOPT_PROXY => '']); // no proxy from the environment for loopback
    $method = (string) ($in['method'] ?? 'GET');
    $url = (string) ($in['url'] ?? '');
    $body = (string) ($in['body'] ?? '');
    $headers = is_array($in['headers'] ?? null) ? $in['headers'] : [];
    if (array_key_exists('send_body', $in)) {
        $issued = $site->issueForRequest($url, $method, $body, (string) ($in['subject'] ?? ''));
        $out = $client->send($method, $url, (string) $in['send_body'], $headers, $issued->header);
    } else {
        $out = $client->call($method, $url, $body, $headers, (string) ($in['subject'] ?? ''));
    }
    return Response::json(200, Wire::encodeJson(['status' => $out['status'], 'body' => $out['body']]));
}

$path = parse_url((string) ($_SERVER['REQUEST_URI'] ?? '/'), PHP_URL_PATH);
// Test endpoints exist only under `php -S`, for loopback clients, and with
// the variable set: never in a production server, even if it leaks there.
$testMode = getenv('DOMAINCONFIRM_TEST_ENDPOINTS') === '1'
    && PHP_SAPI === 'cli-server'
    && in_array($_SERVER['REMOTE_ADDR'] ?? '', ['127.0.0.1', '::1'], true);

try {
    $response = match (true) {
        $path === Wire::DEFAULT_CONFIRM_PATH => null,
        $path === '/domainconfirm/token' && envList('DOMAINCONFIRM_TOKEN_AUDIENCES') !== [] => site()->handleTokenRequest(
            Request::fromGlobals(Wire::MAX_TOKEN_REQUEST),
            // Decide here who may have a token, for example from the session:
            // return the subject ("" for none), or throw DomainConfirm\Refused.
            // This example refuses everyone outside its tests: the
            // same-origin check stops other sites' pages, not plain clients.
            static fn (Request $r, string $audience, string $action): string => $testMode ? '' : throw new Refused('no session'),
        ),
        $testMode && $path === '/test/issue' => testIssue(),
        $testMode && $path === '/test/call' => testCall(),
        default => Response::problem(404, 'not-found', 'nothing here'),
    };
    if ($response === null) {
        site()->serve();
    } else {
        $response->emit();
    }
} catch (StoreException $e) {
    error_log('domainconfirm example: ' . $e->getMessage());
    Response::problem(503, 'store-unavailable', 'the token store failed', ['Retry-After' => '1'])->emit();
} catch (Throwable $e) {
    // The message of our own exceptions never holds a token or a secret.
    error_log('domainconfirm example: ' . get_class($e) . ': ' . $e->getMessage());
    Response::problem(500, 'internal-error', 'the example site failed')->emit();
}
