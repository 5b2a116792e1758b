<?php
/**
 * Checks examples/php/domainconfirm.php against every test vector in
 * testdata/vectors (PROTOCOL.md §16), reproducing exact bytes and signatures.
 *
 *   php examples/php/conformance.php [path/to/testdata/vectors]
 *
 * Prints one line per file and "N passed, N failed"; exits 1 on any mismatch
 * (and 2 when a vector file is missing or not JSON). Every file in the
 * directory must be one this script knows, so a new vector file cannot go
 * unchecked.
 */

declare(strict_types=1);

require __DIR__ . '/domainconfirm.php';

// The handlers log failures of the authorisation hook; the token handler vectors cause some on purpose.
ini_set('error_log', PHP_OS_FAMILY === 'Windows' ? 'NUL' : '/dev/null');

// A warning or notice is a bug in this script or the library: fail loudly.
set_error_handler(static function (int $no, string $msg, string $file, int $line): bool {
    throw new ErrorException($msg, 0, $no, $file, $line);
});

use DomainConfirm\Request;
use DomainConfirm\Site;
use DomainConfirm\TokenStore;
use DomainConfirm\Wire;

/** A TokenStore in memory, for feeding site_record to the handler. */
final class MemoryStore implements TokenStore
{
    public array $records = [];

    public function put(string $key, string $record, int $expiresAt): void
    {
        $this->records[$key] = $record;
    }

    public function take(string $key): ?string
    {
        $r = $this->records[$key] ?? null;
        unset($this->records[$key]);
        return $r;
    }
}

final class Checker
{
    public int $passed = 0;
    public int $failed = 0;
    private int $filePassed = 0;
    private int $fileFailed = 0;

    public function begin(): void
    {
        $this->filePassed = 0;
        $this->fileFailed = 0;
    }

    public function end(string $file): void
    {
        printf("%-20s %4d passed, %d failed\n", $file, $this->filePassed, $this->fileFailed);
    }

    /** One vector: $problems is the list of what did not match (empty: pass). */
    public function vector(string $file, string $name, array $problems): void
    {
        if ($problems === []) {
            $this->passed++;
            $this->filePassed++;
            return;
        }
        $this->failed++;
        $this->fileFailed++;
        foreach ($problems as $p) {
            echo "FAIL $file: $name: $p\n";
        }
    }
}

function show(mixed $v): string
{
    return var_export($v, true);
}

/** $problems[] = "$what: got …, want …" unless equal. */
function expect(array &$problems, string $what, mixed $got, mixed $want): void
{
    if ($got !== $want) {
        $problems[] = "$what: got " . show($got) . ', want ' . show($want);
    }
}

function bodyOf(array $v): string
{
    if (array_key_exists('body_base64', $v)) {
        return base64_decode($v['body_base64'], true);
    }
    return $v['body'];
}

/** §2.2: the URL a verifier POSTs to for a registered confirmation URL, or null. */
function confirmUrl(string $origin, string $registered): ?string
{
    if ($registered === '') {
        return $origin . Wire::DEFAULT_CONFIRM_PATH;
    }
    if (strlen($registered) > 2048 || preg_match('/^[\x21-\x7e]+$/D', $registered) !== 1
        || str_contains($registered, '#') || strncasecmp($registered, 'https://', 8) !== 0) {
        return null;
    }
    $rest = substr($registered, 8);
    $end = strcspn($rest, '/?');
    $authority = substr($rest, 0, $end);
    $pathAndQuery = substr($rest, $end);
    if ($pathAndQuery === '' || $pathAndQuery[0] !== '/' || str_contains($authority, '@')) {
        return null;
    }
    if (Wire::normalizeOrigin('https://' . $authority) !== $origin) {
        return null;
    }
    $q = strpos($pathAndQuery, '?');
    $path = $q === false ? $pathAndQuery : substr($pathAndQuery, 0, $q);
    if (preg_match('/^(?:[A-Za-z0-9\-._~!$&\'()*+,;=:@\/\[\]]|%[0-9A-Fa-f]{2})*$/D', $path) !== 1) {
        return null;
    }
    return $origin . $pathAndQuery;
}

/** §9: whether a response body decodes strictly and validates (the verifier's view). */
function validResponse(string $body): ?array
{
    $m = Wire::decodeObject($body);
    if ($m === null) {
        return null;
    }
    $names = ['version', 'type', 'challenge', 'result', 'reason', 'subject', 'binding', 'issued_at', 'expires_at'];
    if (!Wire::onlyMembers($m, $names)) {
        return null;
    }
    foreach (['version', 'type', 'challenge', 'result'] as $n) {
        if (!property_exists($m, $n)) {
            return null;
        }
    }
    if ($m->version !== 1 || $m->type !== 'confirm' || !is_string($m->challenge) || !Wire::isChallenge($m->challenge)) {
        return null;
    }
    $reason = $m->reason ?? '';
    $subject = $m->subject ?? '';
    $binding = $m->binding ?? null;
    $issued = $m->issued_at ?? 0;
    $expires = $m->expires_at ?? 0;
    if (!is_string($reason) || !is_string($subject) || !is_int($issued) || !is_int($expires)) {
        return null;
    }
    if ($m->result === 'rejected') {
        if (!Wire::isReason($reason) || $subject !== '' || $binding !== null || $issued !== 0 || $expires !== 0) {
            return null;
        }
        return ['result' => 'rejected', 'reason' => $reason, 'challenge' => $m->challenge];
    }
    if ($m->result !== 'confirmed' || $reason !== '' || !Wire::isSubject($subject)
        || $issued <= 0 || $expires <= $issued || $expires > $issued + Wire::MAX_TTL
        || !$binding instanceof stdClass) {
        return null;
    }
    $b = $binding;
    if (!Wire::onlyMembers($b, ['audience', 'kind', 'method', 'path', 'body_sha256', 'action'])
        || !is_string($b->audience ?? null) || !Wire::isCanonicalOrigin($b->audience)) {
        return null;
    }
    $method = $b->method ?? '';
    $path = $b->path ?? '';
    $digest = $b->body_sha256 ?? '';
    $action = $b->action ?? '';
    if (!is_string($method) || !is_string($path) || !is_string($digest) || !is_string($action)) {
        return null;
    }
    if (($b->kind ?? null) === 'request') {
        if (!Wire::isMethod($method) || !Wire::isPath($path) || !Wire::isHex64($digest) || $action !== '') {
            return null;
        }
    } elseif (($b->kind ?? null) === 'action') {
        if (!Wire::isAction($action) || $method !== '' || $path !== '' || $digest !== '') {
            return null;
        }
    } else {
        return null;
    }
    return ['result' => 'confirmed', 'subject' => $subject, 'challenge' => $m->challenge, 'binding' => (array) $b,
        'issued_at' => $issued, 'expires_at' => $expires];
}

/** Headers of a vector as a Request's header map. */
function requestHeaders(array $h): array
{
    $out = [];
    foreach ($h as $name => $value) {
        $out[strtolower($name)][] = $value;
    }
    return $out;
}

/**
 * Another API a site may also work with, and its secret (the bytes 0x80…0x9f,
 * in no vector file), for the checks that a site's answers to one API do not
 * depend on its others.
 */
const OTHER_API = 'https://other-api.invalid';
const OTHER_SECRET = 'dcsec_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8';

$dir = $argv[1] ?? __DIR__ . '/../../testdata/vectors';
$load = static function (string $file) use ($dir): array {
    $text = @file_get_contents($dir . '/' . $file);
    if ($text === false) {
        fwrite(STDERR, "conformance: cannot read $dir/$file\n");
        exit(2);
    }
    try {
        return json_decode($text, true, 512, JSON_THROW_ON_ERROR);
    } catch (JsonException $e) {
        fwrite(STDERR, "conformance: $file is not JSON: {$e->getMessage()}\n");
        exit(2);
    }
};

$c = new Checker();
$checks = [];

$checks['origins.json'] = static function (array $d) use ($c): void {
    foreach ($d['vectors'] as $v) {
        $p = [];
        $got = Wire::normalizeOrigin($v['input']);
        expect($p, 'canonical', $got, $v['valid'] ? $v['canonical'] : null);
        if ($got !== null) {
            expect($p, 'idempotent', Wire::normalizeOrigin($got), $got);
        }
        $c->vector('origins.json', $v['note'], $p);
    }
};

$checks['confirm_urls.json'] = static function (array $d) use ($c): void {
    $p = [];
    expect($p, 'default_path', $d['default_path'], Wire::DEFAULT_CONFIRM_PATH);
    $c->vector('confirm_urls.json', 'default_path', $p);
    foreach ($d['vectors'] as $v) {
        $p = [];
        expect($p, 'url', confirmUrl($v['origin'], $v['confirm_url']), $v['valid'] ? $v['url'] : null);
        $c->vector('confirm_urls.json', $v['note'], $p);
    }
};

$checks['secrets.json'] = static function (array $d) use ($c): void {
    foreach ($d['vectors'] as $v) {
        $p = [];
        $key = Wire::secretKey($v['secret']);
        expect($p, 'key', $key === null ? null : bin2hex($key), $v['valid'] ? $v['key_hex'] : null);
        $c->vector('secrets.json', $v['note'], $p);
    }
};

$checks['tokens.json'] = static function (array $d) use ($c): void {
    $p = [];
    expect($p, 'leeway_seconds', $d['leeway_seconds'], Wire::TOKEN_LEEWAY);
    $c->vector('tokens.json', 'constants', $p);
    foreach ($d['derivation'] as $v) {
        $p = [];
        $key = Wire::secretKey($v['secret']);
        if ($key === null) {
            $p[] = 'the secret is not valid';
        } else {
            $k = Wire::tokenKey($key);
            expect($p, 'token_key', bin2hex($k['token_key']), $v['token_key_hex']);
            expect($p, 'key_id', bin2hex($k['key_id']), $v['key_id_hex']);
        }
        $c->vector('tokens.json', 'derivation: ' . $v['note'], $p);
    }
    foreach ($d['construction'] as $v) {
        $p = [];
        $b = $v['binding'];
        // Byte for byte from the fields.
        $k = Wire::tokenKey((string) Wire::secretKey($v['secret']));
        $built = Wire::buildToken($k['token_key'], $k['key_id'], $v['origin'], $b, $v['issued_at'], $v['lifetime_seconds'], (string) hex2bin($v['nonce_hex']));
        expect($p, 'payload', bin2hex($built['payload']), $v['payload_hex']);
        expect($p, 'mac_input', bin2hex($built['mac_input']), $v['mac_input_hex']);
        expect($p, 'mac', bin2hex($built['mac']), $v['mac_hex']);
        expect($p, 'token', $built['token'], $v['token']);
        expect($p, 'token_sha256', Wire::tokenHash($v['token']), $v['token_sha256']);
        // Parsed back, it has the fields it was built from.
        $t = Wire::parseToken($v['token']);
        expect($p, 'parsed', $t === null ? null : [$t['kind'], $t['issued_at'], $t['expires_at'], $t['action'], bin2hex($t['nonce'])],
            [$b['kind'], $v['issued_at'], $v['issued_at'] + $v['lifetime_seconds'], $b['action'] ?? null, $v['nonce_hex']]);
        // A verifier holding the secret, at the audience, seeing the bound request (any, for an action), accepts it.
        $request = $b['kind'] === 'request'
            ? ['method' => $b['method'], 'path' => $b['path'], 'body_sha256' => $b['body_sha256']]
            : ['method' => 'GET', 'path' => '/', 'body_sha256' => Wire::EMPTY_SHA256];
        expect($p, 'local check', Wire::checkToken([(string) Wire::secretKey($v['secret'])], $v['origin'], $b['audience'], $request, $v['issued_at'], $v['token']), 'valid');
        // The Site issues the same bytes but the nonce: same fields, a MAC that verifies.
        $store = new MemoryStore();
        $site = new Site($v['origin'], [$b['audience'] => [$v['secret']]], $store, ['clock' => static fn (): int => $v['issued_at']]);
        $issued = $b['kind'] === 'request'
            ? $site->issueForRequest($b['audience'] . $b['path'], $b['method'], '', 'user-17', $v['lifetime_seconds'])
            : $site->issueForAction($b['audience'], $b['action'], 'user-17', $v['lifetime_seconds']);
        $t2 = Wire::parseToken($issued->token);
        $t2 = Wire::parseToken($issued->token);
        $fields = static fn (?array $t): ?array => $t === null ? null
            : [$t['kind'], bin2hex($t['key_id']), $t['issued_at'], $t['expires_at'], bin2hex($t['audience_tag']), $t['action']];
        expect($p, 'issued by Site: the fields of the vector (the nonce is random)', $fields($t2), $fields($t));
        $issuedRequest = $b['kind'] === 'request' ? ['method' => $b['method'], 'path' => $b['path'], 'body_sha256' => Wire::EMPTY_SHA256] : $request;
        expect($p, 'issued by Site: local check', Wire::checkToken([(string) Wire::secretKey($v['secret'])], $v['origin'], $b['audience'], $issuedRequest, $v['issued_at'], $issued->token), 'valid');
        expect($p, 'issued by Site: stored under its hash', array_keys($store->records), [$site->origin() . '#' . Wire::tokenHash($issued->token)]);
        $c->vector('tokens.json', 'construction: ' . $v['note'], $p);
    }
    foreach ($d['syntax'] as $v) {
        $p = [];
        $t = Wire::parseToken($v['token']);
        expect($p, 'valid', $t !== null, $v['valid']);
        if ($v['valid'] && $t !== null) {
            expect($p, 'sha256', Wire::tokenHash($v['token']), $v['sha256']);
            expect($p, 'kind', $t['kind'], $v['kind']);
            expect($p, 'key_id', bin2hex($t['key_id']), $v['key_id_hex']);
            expect($p, 'issued_at', $t['issued_at'], $v['issued_at']);
            expect($p, 'expires_at', $t['expires_at'], $v['expires_at']);
            expect($p, 'action', $t['action'], $v['action'] ?? null);
            // The header of §4 carries it.
            expect($p, 'in a Domain-Confirm header', Wire::parseHeader(Wire::formatHeader('https://shop.example', $v['token'])), ['https://shop.example', $v['token']]);
        }
        if (!$v['valid']) {
            expect($p, 'refused by the local check as', Wire::checkToken([], 'https://shop.example', 'https://api.example',
                ['method' => 'GET', 'path' => '/', 'body_sha256' => Wire::EMPTY_SHA256], 1767225600, $v['token']), 'malformed-token');
        }
        $c->vector('tokens.json', 'syntax: ' . $v['note'], $p);
    }
    foreach ($d['checks'] as $v) {
        $p = [];
        $keys = array_map(static fn (string $s): string => (string) Wire::secretKey($s), $v['secrets']);
        expect($p, 'result', Wire::checkToken($keys, $v['origin'], $v['audience'], $v['request'], $v['now'], $v['token']), $v['result']);
        $c->vector('tokens.json', 'checks: ' . $v['note'], $p);
    }
    foreach (array_keys($d) as $section) {
        if (!in_array($section, ['description', 'leeway_seconds', 'derivation', 'construction', 'syntax', 'checks'], true)) {
            $c->vector('tokens.json', $section, ['this script does not know this section']);
        }
    }
};

$checks['bodies.json'] = static function (array $d) use ($c): void {
    foreach ($d['vectors'] as $v) {
        $p = [];
        $body = base64_decode($v['body_base64'], true);
        if (array_key_exists('body', $v)) {
            expect($p, 'body and body_base64', $v['body'], $body);
        }
        expect($p, 'sha256', Wire::bodySha256($body), $v['sha256']);
        $c->vector('bodies.json', $v['note'], $p);
    }
};

$checks['paths.json'] = static function (array $d) use ($c): void {
    foreach ($d['vectors'] as $v) {
        $p = [];
        // path: the one spelling bound (and sent); valid: a verifier accepts
        // the target as received only in that spelling (§3.4).
        $bound = Wire::requestPath($v['target']);
        expect($p, 'path', $bound, $v['path'] ?? null);
        expect($p, 'valid', $bound !== null && $bound === Wire::originForm($v['target']), $v['valid']);
        $c->vector('paths.json', $v['note'], $p);
    }
};

$checks['headers.json'] = static function (array $d) use ($c): void {
    $p = [];
    expect($p, 'max_length', $d['max_length'], Wire::MAX_HEADER);
    $c->vector('headers.json', 'max_length', $p);
    foreach ($d['vectors'] as $v) {
        $p = [];
        expect($p, 'parsed', Wire::parseHeader($v['header']), $v['valid'] ? [$v['origin'], $v['token']] : null);
        if ($v['valid']) {
            $parsed = Wire::parseHeader(Wire::formatHeader($v['origin'], $v['token']));
            expect($p, 'formatHeader round trip', $parsed, [$v['origin'], $v['token']]);
        }
        $c->vector('headers.json', $v['note'], $p);
    }
};

$checks['messages.json'] = static function (array $d) use ($c): void {
    $p = [];
    expect($p, 'max_bytes', $d['max_bytes'], Wire::MAX_MESSAGE);
    expect($p, 'site_reasons', $d['site_reasons'], Wire::SITE_REASONS);
    $c->vector('messages.json', 'constants', $p);
    foreach ($d['vectors'] as $v) {
        $p = [];
        $body = bodyOf($v);
        $ok = match ($v['message']) {
            'request' => ($m = Wire::decodeObject($body)) !== null && Wire::parseConfirmRequest($m) !== null,
            'probe' => ($m = Wire::decodeObject($body)) !== null && Wire::parseProbe($m) !== null,
            'response' => validResponse($body) !== null,
            'probe_response' => validProbeResponse($body) !== null,
            default => null,
        };
        expect($p, 'accepted', $ok, $v['valid']);
        $c->vector('messages.json', $v['message'] . ': ' . $v['note'], $p);
    }
};

/** §10.3: a probe answer decodes strictly and validates (the verifier's view). */
function validProbeResponse(string $body): ?array
{
    $m = Wire::decodeObject($body);
    if ($m === null || !Wire::onlyMembers($m, ['version', 'type', 'challenge', 'proofs'])
        || ($m->version ?? null) !== 1 || ($m->type ?? null) !== 'probe'
        || !is_string($m->challenge ?? null) || !Wire::isChallenge($m->challenge)
        || !is_array($m->proofs ?? null) || count($m->proofs) < 1 || count($m->proofs) > Wire::MAX_SECRETS) {
        return null;
    }
    foreach ($m->proofs as $proof) {
        if (!is_string($proof) || preg_match('/^[A-Za-z0-9+\/]{43}=$/D', $proof) !== 1) {
            return null;
        }
    }
    return ['challenge' => $m->challenge, 'proofs' => $m->proofs];
}

$checks['signatures.json'] = static function (array $d) use ($c): void {
    $keys = [];
    foreach ($d['secrets'] as $name => $s) {
        $p = [];
        $key = Wire::secretKey($s['secret']);
        expect($p, 'key', $key === null ? null : bin2hex($key), $s['key_hex']);
        $keys[$name] = (string) $key;
        $c->vector('signatures.json', "secret $name", $p);
    }
    $p = [];
    expect($p, 'tolerance_seconds', $d['tolerance_seconds'], Wire::TOLERANCE);
    $c->vector('signatures.json', 'tolerance', $p);
    $keysOf = static fn (array $names): array => array_map(static fn (string $n): string => $keys[$n], $names);
    foreach ($d['signing'] as $v) {
        $p = [];
        $ts = (string) $v['timestamp'];
        expect($p, 'signed_content', Wire::signedContent($v['direction'], $v['id'], $ts, $v['body']), $v['signed_content']);
        $sig = Wire::sign($keysOf($v['secrets']), $v['direction'], $v['id'], $v['timestamp'], $v['body']);
        expect($p, 'signature', $sig, $v['signature']);
        expect($p, 'verifies', Wire::verify($keysOf($v['secrets']), $v['direction'], $v['id'], $ts, $sig, $v['body'], $v['timestamp']), null);
        $other = $v['direction'] === 'request' ? 'response' : 'request';
        expect($p, 'fails in the other direction', Wire::verify($keysOf($v['secrets']), $other, $v['id'], $ts, $sig, $v['body'], $v['timestamp']), 'signature');
        $c->vector('signatures.json', 'signing: ' . $v['name'], $p);
    }
    foreach ($d['verification'] as $v) {
        $p = [];
        $got = Wire::verify($keysOf($v['secrets']), $v['direction'], $v['id'], $v['timestamp'], $v['signature'], $v['body'], $v['now']);
        expect($p, 'error', $got, $v['valid'] ? null : $v['error']);
        $c->vector('signatures.json', 'verification: ' . $v['name'], $p);
    }
};

$checks['confirmation.json'] = static function (array $d) use ($c): void {
    $reg = $d['registration'];
    $keys = array_map(static fn (string $s): string => (string) Wire::secretKey($s), $reg['secrets']);
    foreach ($d['exchanges'] as $x) {
        $p = [];
        $now = $x['now'];
        $api = $x['api_request'];
        $creq = $x['confirmation_request'];
        $cres = $x['confirmation_response'];

        // The caller's side: token, header, request.
        expect($p, 'token valid', Wire::isToken($x['token']), true);
        expect($p, 'token_sha256', Wire::tokenHash($x['token']), $x['token_sha256']);
        expect($p, 'Domain-Confirm', Wire::parseHeader($api['headers']['Domain-Confirm']), [$reg['origin'], $x['token']]);
        expect($p, 'api body_sha256', Wire::bodySha256($api['body']), $api['body_sha256']);

        // The token: MACed with the registration's first secret (tokens.json). The
        // verifier's local check passes, but in the exchange whose body differs.
        $apiRequest = ['method' => $api['method'], 'path' => Wire::requestPath($api['target']), 'body_sha256' => $api['body_sha256']];
        $wantLocal = ($x['outcome']['reason'] ?? '') === 'request-mismatch' ? 'request-mismatch' : 'valid';
        expect($p, 'local check', Wire::checkToken($keys, $reg['origin'], $d['audience'], $apiRequest, $now, $x['token']), $wantLocal);
        $t = Wire::parseToken($x['token']);
        expect($p, 'key id of the first secret', $t === null ? null : bin2hex($t['key_id']), bin2hex(Wire::tokenKey($keys[0])['key_id']));
        if ($t !== null && $x['site_record'] !== null) {
            // The record is what the site stored when it issued this very token:
            // rebuilding the token from it (and the token's nonce) gives the same bytes.
            $rec = $x['site_record'];
            $k = Wire::tokenKey($keys[0]);
            $rebuilt = Wire::buildToken($k['token_key'], $k['key_id'], $reg['origin'], $rec['binding'], $rec['issued_at'], $rec['expires_at'] - $rec['issued_at'], $t['nonce']);
            expect($p, 'token rebuilt from site_record', $rebuilt['token'], $x['token']);
        }

        // The verifier's request: URL, exact signature, content derived from the API request.
        expect($p, 'confirm url', confirmUrl($reg['origin'], $reg['confirm_url']), $creq['url']);
        expect($p, 'method', $creq['method'], 'POST');
        $h = $creq['headers'];
        expect($p, 'Content-Length', $h['Content-Length'], (string) strlen($creq['body']));
        expect($p, 'request signature reproduced', Wire::sign($keys, 'request', $h['Domainconfirm-Id'], (int) $h['Domainconfirm-Timestamp'], $creq['body']), $h['Domainconfirm-Signature']);
        expect($p, 'request verifies', Wire::verify($keys, 'request', $h['Domainconfirm-Id'], $h['Domainconfirm-Timestamp'], $h['Domainconfirm-Signature'], $creq['body'], $now), null);
        $m = Wire::decodeObject($creq['body']);
        $parsed = $m === null ? null : Wire::parseConfirmRequest($m);
        if ($parsed === null) {
            $p[] = 'confirmation request does not validate';
        } else {
            expect($p, 'origin', $parsed['origin'], $reg['origin']);
            expect($p, 'audience', $parsed['audience'], $d['audience']);
            expect($p, 'token_sha256 member', $parsed['token_sha256'], $x['token_sha256']);
            expect($p, 'request member', $parsed['request'], [
                'method' => $api['method'], 'path' => Wire::requestPath($api['target']), 'body_sha256' => $api['body_sha256'],
            ]);
        }

        // The site: fed the request with site_record in its store, it answers the exact bytes.
        // The site signs at its clock then, which is the answer's Domainconfirm-Timestamp.
        $signedAt = (int) $cres['headers']['Domainconfirm-Timestamp'];
        $store = new MemoryStore();
        if ($x['site_record'] !== null) {
            $store->records[$reg['origin'] . '#' . $x['token_sha256']] = json_encode($x['site_record']);
        }
        $site = new Site($reg['origin'], [$d['audience'] => $reg['secrets']], $store, ['clock' => static fn (): int => $signedAt]);
        $request = new Request('POST', requestHeaders($h), $creq['body'], strlen($creq['body']));
        $answer = $site->handle($request);
        expect($p, 'site status', $answer->status, $cres['status']);
        expect($p, 'site body', $answer->body, $cres['body']);
        $want = $cres['headers'];
        foreach ($want as $name => $value) {
            $got = $name === 'Content-Length' ? (string) strlen($answer->body) : ($answer->headers[$name] ?? null);
            expect($p, "site header $name", $got, $value);
        }
        foreach ($answer->headers as $name => $_) {
            if (!array_key_exists($name, $want)) {
                $p[] = "site header $name is not in the vector";
            }
        }
        expect($p, 'token consumed', $store->records, []);
        $again = $site->handle($request);
        $replayed = validResponse($again->body);
        expect($p, 'same request again', $replayed['reason'] ?? null, 'unknown-token');

        // Not a vector of its own: a site that also works with another API, configured
        // first, gives the same answer byte for byte (signed with this API's secrets only).
        $store2 = new MemoryStore();
        $store2->records = $x['site_record'] === null ? [] : [$reg['origin'] . '#' . $x['token_sha256'] => json_encode($x['site_record'])];
        $site2 = new Site($reg['origin'], [OTHER_API => [OTHER_SECRET], $d['audience'] => $reg['secrets']], $store2, ['clock' => static fn (): int => $signedAt]);
        $answer2 = $site2->handle($request);
        expect($p, 'with another API first: the same answer', [$answer2->status, $answer2->headers, $answer2->body], [$answer->status, $answer->headers, $answer->body]);

        // Nor is this: the site issues for this binding with the registration's FIRST secret (§3.5).
        if ($x['site_record'] !== null) {
            $b = $x['site_record']['binding'];
            $issued = $b['kind'] === 'request'
                ? $site2->issueForRequest($b['audience'] . $b['path'], $b['method'], $api['body'])
                : $site2->issueForAction($b['audience'], $b['action']);
            $t2 = Wire::parseToken($issued->token);
            expect($p, 'issued with the first secret', $t2 === null ? null : bin2hex($t2['key_id']), bin2hex(Wire::tokenKey($keys[0])['key_id']));
            // (bound to the body the caller sent, which is what a request-bound token is issued for)
            $bound = $b['kind'] === 'request' ? ['method' => $b['method'], 'path' => $b['path'], 'body_sha256' => $api['body_sha256']] : $apiRequest;
            expect($p, 'issued: local check (the key id picks the key)', Wire::checkToken(array_reverse($keys), $reg['origin'], $d['audience'], $bound, $signedAt, $issued->token), 'valid');
            expect($p, 'issued: not for the other API', Wire::checkToken([(string) Wire::secretKey(OTHER_SECRET)], $reg['origin'], OTHER_API, $bound, $signedAt, $issued->token), 'audience-mismatch');
        }

        // The verifier's view of the answer.
        $rh = $cres['headers'];
        expect($p, 'response id echoed', $rh['Domainconfirm-Id'], $h['Domainconfirm-Id']);
        expect($p, 'response verifies', Wire::verify($keys, 'response', $rh['Domainconfirm-Id'], $rh['Domainconfirm-Timestamp'], $rh['Domainconfirm-Signature'], $cres['body'], $now), null);
        expect($p, 'response is not a request', Wire::verify($keys, 'request', $rh['Domainconfirm-Id'], $rh['Domainconfirm-Timestamp'], $rh['Domainconfirm-Signature'], $cres['body'], $now), 'signature');
        $res = validResponse($cres['body']);
        if ($res === null) {
            $p[] = 'confirmation response does not validate';
        } else {
            expect($p, 'challenge echoed', $res['challenge'], $parsed['challenge'] ?? null);
            $outcome = ['result' => $res['result']];
            if ($res['result'] === 'rejected') {
                $outcome['reason'] = in_array($res['reason'], Wire::SITE_REASONS, true) ? $res['reason'] : 'token-rejected';
            } else {
                if ($res['subject'] !== '') {
                    $outcome['subject'] = $res['subject'];
                }
                expect($p, 'binding audience', $res['binding']['audience'], $d['audience']);
                expect($p, 'not expired 300 s ago', $res['expires_at'] >= $now - Wire::TOLERANCE, true);
            }
            expect($p, 'outcome', $outcome, $x['outcome']);
        }
        $c->vector('confirmation.json', $x['name'], $p);
    }
};

$checks['probes.json'] = static function (array $d) use ($c): void {
    $reg = $d['registration'];
    $keys = array_map(static fn (string $s): string => (string) Wire::secretKey($s), $reg['secrets']);
    foreach ($d['proofs'] as $v) {
        $p = [];
        expect($p, 'proof_input', 'domainconfirm.v1.probe.' . $v['challenge'], $v['proof_input']);
        expect($p, 'proof', Wire::probeProof((string) hex2bin($v['key_hex']), $v['challenge']), $v['proof']);
        $c->vector('probes.json', 'proof: ' . $v['name'], $p);
    }
    foreach ($d['messages'] as $v) {
        $p = [];
        $body = bodyOf($v);
        $ok = match ($v['message']) {
            'probe' => ($m = Wire::decodeObject($body)) !== null && Wire::parseProbe($m) !== null,
            'probe_response' => validProbeResponse($body) !== null,
            default => null,
        };
        expect($p, 'accepted', $ok, $v['valid']);
        $c->vector('probes.json', $v['message'] . ': ' . $v['note'], $p);
    }
    foreach ($d['exchanges'] as $x) {
        $p = [];
        $preq = $x['probe_request'];
        $h = $preq['headers'];
        expect($p, 'url', confirmUrl($reg['origin'], $reg['confirm_url']), $preq['url']);
        expect($p, 'request signature reproduced', Wire::sign($keys, 'request', $h['Domainconfirm-Id'], (int) $h['Domainconfirm-Timestamp'], $preq['body']), $h['Domainconfirm-Signature']);
        $m = Wire::decodeObject($preq['body']);
        $probe = $m === null ? null : Wire::parseProbe($m);
        expect($p, 'probe validates', $probe !== null, true);
        expect($p, 'probe origin and audience', [$probe['origin'] ?? null, $probe['audience'] ?? null], [$reg['origin'], $d['audience']]);
        // The site answers one second after the verifier signed (the answer's timestamp).
        $pres = $x['probe_response'];
        $signedAt = $x['now'] + 1;
        // The site holds site_secrets for the API that probes it (the file's audience).
        $site = new Site($x['site_origin'], [$d['audience'] => $x['site_secrets']], new MemoryStore(), ['clock' => static fn (): int => $signedAt]);
        $answer = $site->handle(new Request('POST', requestHeaders($h), $preq['body'], strlen($preq['body'])));
        expect($p, 'site status', $answer->status, $pres['status']);
        // Not a vector of its own: with another API configured first, the same answer
        // (the proofs and the signature are of the probing API's secrets only).
        $site2 = new Site($x['site_origin'], [OTHER_API => [OTHER_SECRET], $d['audience'] => $x['site_secrets']], new MemoryStore(), ['clock' => static fn (): int => $signedAt]);
        $answer2 = $site2->handle(new Request('POST', requestHeaders($h), $preq['body'], strlen($preq['body'])));
        expect($p, 'with another API first: the same answer', [$answer2->status, $answer2->headers, $answer2->body], [$answer->status, $answer->headers, $answer->body]);
        foreach ($pres['headers'] as $name => $value) {
            $got = $name === 'Content-Length' ? (string) strlen($answer->body) : headerOf($answer->headers, $name);
            expect($p, "site header $name", $got, $value);
        }
        if ($pres['status'] !== 200) {
            expect($p, 'reason', json_decode($answer->body, true)['reason'] ?? null, $x['reason']);
            expect($p, 'unsigned', headerOf($answer->headers, 'Domainconfirm-Signature'), null);
            $c->vector('probes.json', $x['name'], $p);
            continue;
        }
        expect($p, 'site body', $answer->body, $pres['body']);
        foreach ($answer->headers as $name => $_) {
            if (!array_key_exists($name, $pres['headers'])) {
                $p[] = "site header $name is not in the vector";
            }
        }
        // The verifier's view: the answer verifies under a registered key the site holds, and the proofs say which.
        $rh = $pres['headers'];
        expect($p, 'id echoed', $rh['Domainconfirm-Id'], $h['Domainconfirm-Id']);
        $siteKeys = array_map(static fn (string $s): string => (string) Wire::secretKey($s), $x['site_secrets']);
        expect($p, 'answer verifies', Wire::verify($siteKeys, 'response', $rh['Domainconfirm-Id'], $rh['Domainconfirm-Timestamp'], $rh['Domainconfirm-Signature'], $pres['body'], $x['now']), null);
        $res = validProbeResponse($pres['body']);
        expect($p, 'challenge echoed', $res['challenge'] ?? null, $probe['challenge'] ?? null);
        $held = [];
        foreach ($keys as $i => $k) {
            if (in_array(Wire::probeProof($k, (string) ($probe['challenge'] ?? '')), $res['proofs'] ?? [], true)) {
                $held[] = $i + 1;
            }
        }
        expect($p, 'secrets_held', $held, $x['secrets_held']);
        $c->vector('probes.json', $x['name'], $p);
    }
};

/** The value of header $name (case-insensitive) in a name => value map, or null. */
function headerOf(array $headers, string $name): ?string
{
    foreach ($headers as $n => $v) {
        if (strcasecmp($n, $name) === 0) {
            return $v;
        }
    }
    return null;
}

/** A Request from a site_handler.json vector: [name, value] pairs, Host taken apart. */
function vectorRequest(array $v): Request
{
    $headers = [];
    $host = '';
    foreach ($v['headers'] ?? [] as [$name, $value]) {
        if (strcasecmp($name, 'Host') === 0) {
            $host = $value;
            continue;
        }
        $headers[strtolower($name)][] = $value;
    }
    return new Request($v['method'], $headers, $v['body'], strlen($v['body']), $host);
}

function checkHandlerAnswer(array &$p, DomainConfirm\Response $answer, array $v): void
{
    expect($p, 'status', $answer->status, $v['status']);
    $decoded = json_decode($answer->body, true);
    expect($p, 'reason', is_array($decoded) ? ($decoded['reason'] ?? '') : null, $v['reason']);
    foreach ($v['response_headers'] as $name => $value) {
        expect($p, "header $name", headerOf($answer->headers, $name), $value);
    }
    if ($answer->status !== 200) {
        expect($p, 'a problem is unsigned', headerOf($answer->headers, 'Domainconfirm-Signature'), null);
        expect($p, 'problem type', $decoded['type'] ?? null, Wire::PROBLEM_BASE . $v['reason']);
        expect($p, 'problem status', $decoded['status'] ?? null, $v['status']);
    }
}

$checks['site_handler.json'] = static function (array $d) use ($c): void {
    $now = $d['now'];
    $origin = $d['site']['origin'];
    $apis = $d['site']['apis']; // [{audience, secrets}, …], in the order the site configures them
    $keysOf = static function (string $audience) use ($apis): array {
        foreach ($apis as $api) {
            if ($api['audience'] === $audience) {
                return array_map(static fn (string $s): string => (string) Wire::secretKey($s), $api['secrets']);
            }
        }
        return [];
    };
    // A record that must survive every answer that is not a signed 200: nothing is consumed before §8 step 6.
    $waiting = Wire::encodeJson(['binding' => ['audience' => $apis[0]['audience'], 'kind' => 'action', 'action' => 'x'],
        'subject' => '', 'issued_at' => $now, 'expires_at' => $now + 60]);
    foreach ($d['confirmation'] as $v) {
        $p = [];
        $store = new MemoryStore();
        $m = Wire::decodeObject($v['body']);
        $hash = $m !== null && is_string($m->token_sha256 ?? null) ? $m->token_sha256 : null;
        if ($v['status'] !== 200 && $hash !== null) {
            $store->records[$origin . '#' . $hash] = $waiting;
        }
        $site = new Site($origin, $apis, $store, ['clock' => static fn (): int => $now]);
        $answer = $site->handle(vectorRequest($v));
        checkHandlerAnswer($p, $answer, $v);
        if ($v['status'] !== 200 && $hash !== null) {
            expect($p, 'nothing consumed', $store->records[$origin . '#' . $hash] ?? null, $waiting);
        }
        if ($answer->status === 200) {
            // Signed with the secrets of the API the request names (and whose secrets verified it), only those.
            $audience = is_string($m->audience ?? null) ? $m->audience : '';
            $id = headerOf($answer->headers, 'Domainconfirm-Id');
            $ts = headerOf($answer->headers, 'Domainconfirm-Timestamp');
            $sig = headerOf($answer->headers, 'Domainconfirm-Signature');
            expect($p, 'answer signed by the asking API\'s secrets', Wire::verify($keysOf($audience), 'response', $id, $ts, $sig, $answer->body, $now), null);
            foreach ($apis as $api) {
                if ($api['audience'] !== $audience) {
                    expect($p, 'answer not signed by ' . $api['audience'] . '\'s secrets', Wire::verify($keysOf($api['audience']), 'response', $id, $ts, $sig, $answer->body, $now), 'signature');
                }
            }
            expect($p, 'entries', count(explode(' ', (string) $sig)), count($keysOf($audience)));
        }
        $c->vector('site_handler.json', 'confirmation: ' . $v['note'], $p);
    }
    $th = $d['token_handler'];
    $authorize = static function (Request $r, string $audience, string $action): string {
        return match ($action) {
            'refuse' => throw new DomainConfirm\Refused(),
            'fail' => throw new RuntimeException('session store down'),
            'bad-subject' => "\u{7}",
            default => 'user-17',
        };
    };
    foreach ($th['vectors'] as $v) {
        $p = [];
        $store = new MemoryStore();
        $site = new Site($origin, $apis, $store, [
            'clock' => static fn (): int => $now, 'ttl' => $th['ttl_seconds'], 'audiences' => $th['audiences'],
        ]);
        $answer = $site->handleTokenRequest(vectorRequest($v), $authorize);
        checkHandlerAnswer($p, $answer, $v);
        if ($answer->status !== 200) {
            expect($p, 'nothing stored', $store->records, []);
        } else {
            $ans = json_decode($answer->body, true);
            $asked = json_decode($v['body'], true);
            $audience = Wire::normalizeOrigin($asked['audience']);
            $header = Wire::parseHeader($ans['header'] ?? '');
            expect($p, 'header origin', $header[0] ?? null, $origin);
            expect($p, 'expires_at', $ans['expires_at'] ?? null, $now + $th['ttl_seconds']);
            $token = (string) ($header[1] ?? '');
            $t = Wire::parseToken($token);
            $keys = $keysOf((string) $audience);
            expect($p, 'token fields', $t === null ? null : [$t['kind'], $t['action'], $t['issued_at'], $t['expires_at'], bin2hex($t['key_id']), bin2hex($t['audience_tag'])],
                ['action', $asked['action'], $now, $now + $th['ttl_seconds'], bin2hex(Wire::tokenKey($keys[0])['key_id']), bin2hex(Wire::audienceTag((string) $audience))]);
            $any = ['method' => 'POST', 'path' => '/v1/reports', 'body_sha256' => Wire::EMPTY_SHA256];
            expect($p, 'the API accepts the token (local check)', Wire::checkToken($keys, $origin, (string) $audience, $any, $now, $token), 'valid');
            foreach ($apis as $api) {
                if ($api['audience'] !== $audience) {
                    expect($p, 'another API does not', Wire::checkToken($keysOf($api['audience']), $origin, $api['audience'], $any, $now, $token), 'audience-mismatch');
                }
            }
            $record = json_decode($store->records[$origin . '#' . Wire::tokenHash($token)] ?? 'null', true);
            expect($p, 'stored record', $record, ['binding' => ['audience' => $audience, 'kind' => 'action', 'action' => $asked['action']],
                'subject' => 'user-17', 'issued_at' => $now, 'expires_at' => $now + $th['ttl_seconds']]);
        }
        $c->vector('site_handler.json', 'token handler: ' . $v['note'], $p);
    }
    foreach (array_keys($d) as $section) {
        if (!in_array($section, ['description', 'site', 'now', 'confirmation', 'token_handler'], true)) {
            $c->vector('site_handler.json', $section, ['this script does not know this section']);
        }
    }
};

$files = array_map('basename', glob($dir . '/*.json') ?: []);
sort($files);
if ($files === []) {
    fwrite(STDERR, "conformance: no vector files in $dir\n");
    exit(2);
}
foreach ($files as $file) {
    $c->begin();
    if (!isset($checks[$file])) {
        $c->vector($file, 'file', ['this script does not know how to check this file']);
    } else {
        try {
            $checks[$file]($load($file));
        } catch (Throwable $e) {
            $c->vector($file, 'file', [get_class($e) . ': ' . $e->getMessage() . ' at line ' . $e->getLine()]);
        }
    }
    $c->end($file);
}
foreach (array_keys($checks) as $file) {
    if (!in_array($file, $files, true)) {
        $c->begin();
        $c->vector($file, 'file', ['missing from ' . $dir]);
        $c->end($file);
    }
}
printf("%d passed, %d failed\n", $c->passed, $c->failed);
exit($c->failed === 0 ? 0 : 1);
