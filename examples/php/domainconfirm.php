<?php
/**
 * domainconfirm site side, protocol version 1, for PHP 8.2+.
 *
 * Copy this one file into your project. It needs only standard extensions:
 * hash, json, pdo_sqlite (the token store) and curl (the API client helper).
 *
 *   require __DIR__ . '/domainconfirm.php';
 *   $site = new DomainConfirm\Site(
 *       'https://shop.example',
 *       ['https://api.example' => [getenv('DOMAINCONFIRM_SECRET')]], // per API: its own 1 to 8 secrets
 *       new DomainConfirm\SqliteTokenStore('/var/lib/shop/domainconfirm.sqlite'),
 *   );
 *   // at /.well-known/domainconfirm:
 *   $site->serve();
 *
 * The specification is PROTOCOL.md in github.com/domainconfirm/domainconfirm;
 * section numbers (§) below refer to it. Tokens and secrets are never logged,
 * echoed or put in an error message by this file.
 */

declare(strict_types=1);

namespace DomainConfirm;

/** Thrown when the token store fails; the handler answers 503 store-unavailable. */
class StoreException extends \RuntimeException
{
}

/** Thrown by an authorisation hook of the token handler to refuse a token (403 token-refused). */
class Refused extends \RuntimeException
{
}

/**
 * The encodings, limits and signatures of the protocol (Go: internal/wire).
 * Every function is pure; those that validate return null for "refused".
 */
final class Wire
{
    public const VERSION = 1;
    public const DEFAULT_CONFIRM_PATH = '/.well-known/domainconfirm';
    public const TOLERANCE = 300;          // §5.4: timestamps, seconds either way
    public const MAX_TTL = 300;            // §3.3
    public const DEFAULT_TTL = 60;         // §3.3
    public const MAX_MESSAGE = 16384;      // §6
    public const MAX_TOKEN_REQUEST = 4096; // §15
    public const MAX_HEADER = 1024;        // §4
    public const MAX_SIGNATURE_HEADER = 1024;
    public const MAX_SIGNATURES = 8;
    public const MAX_SECRETS = 8;
    public const MAX_SUBJECT = 256;
    public const MAX_PATH = 2048;
    public const PROBLEM_BASE = 'https://github.com/domainconfirm/domainconfirm/blob/main/PROTOCOL.md#';
    public const SITE_REASONS = ['unknown-token', 'wrong-origin', 'token-expired', 'audience-mismatch', 'request-mismatch'];
    public const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    public const TOKEN_PREFIX = 'dct_';    // §3.1
    public const KIND_REQUEST = 1;
    public const KIND_ACTION = 2;
    public const REQUEST_TOKEN_BYTES = 56;
    public const TOKEN_MAC_BYTES = 16;
    public const MAX_ISSUED_AT = 1 << 40;
    public const TOKEN_LEEWAY = 30;        // §3.3: the verifier's leeway on token times at the local level

    /** §3.4 and §2.2: the characters a path keeps byte for byte (plus valid %XX escapes). */
    private const KEPT_PATH = '/^(?:[A-Za-z0-9\-._~!$&\'()*+,;=:@\/\[\]]|%[0-9A-Fa-f]{2})*$/D';

    /** §2.1: the canonical form of an origin, or null when $s is not an origin. */
    public static function normalizeOrigin(string $s): ?string
    {
        if (preg_match('/^[\x21-\x7e]{1,300}$/D', $s) !== 1 || strncasecmp($s, 'https://', 8) !== 0) {
            return null;
        }
        $rest = substr($s, 8);
        $end = strcspn($rest, '/?#');
        $authority = substr($rest, 0, $end);
        $tail = substr($rest, $end);
        if (($tail !== '' && $tail !== '/') || $authority === '' || str_contains($authority, '@')) {
            return null;
        }
        if ($authority[0] === '[') {
            $close = strpos($authority, ']');
            if ($close === false) {
                return null;
            }
            $host = self::canonicalIPv6(substr($authority, 1, $close - 1));
            if ($host === null) {
                return null;
            }
            $after = substr($authority, $close + 1);
        } else {
            $colon = strpos($authority, ':');
            $name = $colon === false ? $authority : substr($authority, 0, $colon);
            $after = $colon === false ? '' : substr($authority, $colon);
            $host = self::canonicalHost($name);
            if ($host === null) {
                return null;
            }
        }
        $port = 443;
        if ($after !== '') {
            if (preg_match('/^:([0-9]{1,5})$/D', $after, $m) !== 1) {
                return null;
            }
            $port = (int) $m[1];
            if ($port < 1 || $port > 65535) {
                return null;
            }
        }
        return 'https://' . $host . ($port === 443 ? '' : ':' . $port);
    }

    /** A dotted-decimal IPv4 address or a DNS name (§2.1 step 6), lower-cased, or null. */
    private static function canonicalHost(string $name): ?string
    {
        $octet = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
        if (preg_match('/^' . $octet . '(?:\.' . $octet . '){3}$/D', $name) === 1) {
            return $name;
        }
        $name = strtolower($name);
        if ($name === '' || strlen($name) > 253) {
            return null;
        }
        $labels = explode('.', $name);
        foreach ($labels as $label) {
            if (preg_match('/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/D', $label) !== 1) {
                return null;
            }
        }
        // The last label must not be a number as the URL Standard reads one.
        if (preg_match('/^(?:[0-9]+|0x[0-9a-f]*)$/D', end($labels)) === 1) {
            return null;
        }
        return $name;
    }

    /** The text of a bracketed IPv6 host (§2.1): RFC 5952, IPv4-mapped as a dotted quad. */
    private static function canonicalIPv6(string $text): ?string
    {
        if ($text === '' || preg_match('/^[0-9A-Fa-f:.]+$/D', $text) !== 1) {
            return null; // no zone (%), nothing but an address
        }
        $bin = @inet_pton($text);
        if ($bin === false || strlen($bin) !== 16) {
            return null;
        }
        if (str_starts_with($bin, str_repeat("\0", 10) . "\xff\xff")) {
            return '[::ffff:' . inet_ntop(substr($bin, 12)) . ']';
        }
        $groups = array_values(unpack('n8', $bin));
        $bestStart = -1;
        $bestLen = 0;
        for ($i = 0; $i < 8;) {
            if ($groups[$i] !== 0) {
                $i++;
                continue;
            }
            $j = $i;
            while ($j < 8 && $groups[$j] === 0) {
                $j++;
            }
            if ($j - $i >= 2 && $j - $i > $bestLen) {
                $bestStart = $i;
                $bestLen = $j - $i;
            }
            $i = $j;
        }
        $hex = array_map(static fn (int $g): string => dechex($g), $groups);
        if ($bestStart < 0) {
            return '[' . implode(':', $hex) . ']';
        }
        $left = implode(':', array_slice($hex, 0, $bestStart));
        $right = implode(':', array_slice($hex, $bestStart + $bestLen));
        return '[' . $left . '::' . $right . ']';
    }

    /** §2.3: the HMAC key (raw bytes) of a shared secret "dcsec_…", or null. */
    public static function secretKey(#[\SensitiveParameter] string $secret): ?string
    {
        if (preg_match('/^dcsec_([A-Za-z0-9_-]{43,86})$/D', $secret, $m) !== 1 || strlen($m[1]) % 4 === 1) {
            return null;
        }
        $key = self::base64urlDecode($m[1]);
        if ($key === null || strlen($key) < 32 || strlen($key) > 64) {
            return null;
        }
        return $key;
    }

    /** Unpadded base64url (RFC 4648 §5) to bytes; null unless canonical (unused bits zero). */
    public static function base64urlDecode(#[\SensitiveParameter] string $s): ?string
    {
        if (preg_match('/^[A-Za-z0-9_-]*$/D', $s) !== 1 || strlen($s) % 4 === 1) {
            return null;
        }
        $bytes = base64_decode(strtr($s, '-_', '+/'), true);
        if ($bytes === false || self::base64url($bytes) !== $s) {
            return null;
        }
        return $bytes;
    }

    public static function base64url(#[\SensitiveParameter] string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    /** §3.1: whether $token is a well-formed signed token (its MAC is not checked). */
    public static function isToken(#[\SensitiveParameter] string $token): bool
    {
        return self::parseToken($token) !== null;
    }

    /**
     * §3.1: the fields of a signed token, or null when it is malformed
     * (malformed-token). Syntax only: the MAC is not checked (checkToken does).
     *
     * @return array{kind: string, key_id: string, issued_at: int, lifetime: int, expires_at: int,
     *   nonce: string, audience_tag: string, request_tag: ?string, action: ?string, payload: string, mac: string}|null
     *   key_id, nonce, tags, payload and mac are raw bytes
     */
    public static function parseToken(#[\SensitiveParameter] string $token): ?array
    {
        if (!str_starts_with($token, self::TOKEN_PREFIX)) {
            return null;
        }
        $encoded = substr($token, strlen(self::TOKEN_PREFIX));
        if (strlen($encoded) < 72 || strlen($encoded) > 156) {
            return null; // the ABNF of §3.1, before decoding anything
        }
        $raw = self::base64urlDecode($encoded); // the alphabet, 4n+1 and canonical encoding
        if ($raw === null || strlen($raw) < 36 || ord($raw[0]) !== self::VERSION) {
            return null;
        }
        $kind = ord($raw[1]);
        $action = null;
        $requestTag = null;
        if ($kind === self::KIND_REQUEST) {
            if (strlen($raw) !== self::REQUEST_TOKEN_BYTES) {
                return null;
            }
            $requestTag = substr($raw, 36, 4);
        } elseif ($kind === self::KIND_ACTION) {
            $n = ord($raw[36]);
            if ($n < 1 || $n > 64 || strlen($raw) !== 36 + 1 + $n + self::TOKEN_MAC_BYTES) {
                return null;
            }
            $action = substr($raw, 37, $n);
            if (!self::isAction($action)) {
                return null;
            }
        } else {
            return null;
        }
        $issuedAt = unpack('J', substr($raw, 6, 8))[1]; // a value of 2^63 or more reads negative: refused below
        $lifetime = unpack('n', substr($raw, 14, 2))[1];
        if ($issuedAt < 1 || $issuedAt > self::MAX_ISSUED_AT || $lifetime < 1 || $lifetime > self::MAX_TTL) {
            return null;
        }
        return [
            'kind' => $kind === self::KIND_REQUEST ? 'request' : 'action',
            'key_id' => substr($raw, 2, 4),
            'issued_at' => $issuedAt,
            'lifetime' => $lifetime,
            'expires_at' => $issuedAt + $lifetime,
            'nonce' => substr($raw, 16, 16),
            'audience_tag' => substr($raw, 32, 4),
            'request_tag' => $requestTag,
            'action' => $action,
            'payload' => substr($raw, 0, -self::TOKEN_MAC_BYTES),
            'mac' => substr($raw, -self::TOKEN_MAC_BYTES),
        ];
    }

    /**
     * §3.5: the token key (32 bytes) and key id (4 bytes) of a secret's key
     * bytes: HKDF-SHA256 with an empty salt (PHP's hash_hkdf with salt ""
     * keys HMAC with the empty string, which HMAC pads to the same block as
     * the 32 zero bytes of RFC 5869).
     *
     * @return array{token_key: string, key_id: string}
     */
    public static function tokenKey(#[\SensitiveParameter] string $key): array
    {
        return [
            'token_key' => hash_hkdf('sha256', $key, 32, 'domainconfirm.v1.token-key', ''),
            'key_id' => hash_hkdf('sha256', $key, 4, 'domainconfirm.v1.key-id', ''),
        ];
    }

    /** §3.1: the first 4 bytes of SHA-256(audience). */
    public static function audienceTag(string $audience): string
    {
        return substr(hash('sha256', $audience, true), 0, 4);
    }

    /** §3.1: the first 4 bytes of SHA-256(method LF path LF body_sha256). */
    public static function requestTag(string $method, string $path, string $bodySha256): string
    {
        return substr(hash('sha256', $method . "\n" . $path . "\n" . $bodySha256, true), 0, 4);
    }

    /**
     * §3.1: the MAC input. $method, $path and $bodySha256 are the request
     * binding's for a request token and "" for an action token.
     */
    public static function tokenMacInput(string $origin, string $audience, string $method, string $path, string $bodySha256, string $payload): string
    {
        return "domainconfirm.v1.token\n" . $origin . "\n" . $audience . "\n" . $method . "\n" . $path . "\n" . $bodySha256 . "\n" . $payload;
    }

    /**
     * §3.1: a signed token for $binding (audience, kind and its members, already
     * validated), issued by $origin at $issuedAt for $lifetime seconds with the
     * 16 bytes $nonce, MACed with $tokenKey whose key id is $keyId.
     *
     * @return array{payload: string, mac_input: string, mac: string, token: string} raw bytes but token
     */
    public static function buildToken(#[\SensitiveParameter] string $tokenKey, string $keyId, string $origin, array $binding, int $issuedAt, int $lifetime, string $nonce): array
    {
        if (strlen($keyId) !== 4 || strlen($nonce) !== 16 || $issuedAt < 1 || $issuedAt > self::MAX_ISSUED_AT
            || $lifetime < 1 || $lifetime > self::MAX_TTL) {
            throw new \InvalidArgumentException('domainconfirm: cannot build a token from these fields');
        }
        $request = $binding['kind'] === 'request';
        $payload = chr(self::VERSION) . chr($request ? self::KIND_REQUEST : self::KIND_ACTION) . $keyId
            . pack('J', $issuedAt) . pack('n', $lifetime) . $nonce . self::audienceTag($binding['audience'])
            . ($request
                ? self::requestTag($binding['method'], $binding['path'], $binding['body_sha256'])
                : chr(strlen($binding['action'])) . $binding['action']);
        $input = $request
            ? self::tokenMacInput($origin, $binding['audience'], $binding['method'], $binding['path'], $binding['body_sha256'], $payload)
            : self::tokenMacInput($origin, $binding['audience'], '', '', '', $payload);
        $mac = substr(hash_hmac('sha256', $input, $tokenKey, true), 0, self::TOKEN_MAC_BYTES);
        return ['payload' => $payload, 'mac_input' => $input, 'mac' => $mac, 'token' => self::TOKEN_PREFIX . self::base64url($payload . $mac)];
    }

    /**
     * §10.1 step 5, the VERIFIER's local check (a site never needs it; it is
     * here for conformance.php and for an API written in PHP): 'valid', or the
     * reason a verifier holding the secret keys $keys for the claimed $origin,
     * at its own $audience, seeing $request (method, path, body_sha256) at
     * $now refuses $token with: malformed-token, audience-mismatch,
     * request-mismatch, forged-token (the MAC, checked first), token-expired.
     */
    public static function checkToken(#[\SensitiveParameter] array $keys, string $origin, string $audience, array $request, int $now, #[\SensitiveParameter] string $token): string
    {
        $t = self::parseToken($token);
        if ($t === null) {
            return 'malformed-token';
        }
        $macOk = false;
        foreach ($keys as $key) {
            $k = self::tokenKey($key);
            if (!hash_equals($k['key_id'], $t['key_id'])) {
                continue;
            }
            // One HMAC: the key id names the key (§3.5).
            $input = $t['kind'] === 'request'
                ? self::tokenMacInput($origin, $audience, $request['method'], $request['path'], $request['body_sha256'], $t['payload'])
                : self::tokenMacInput($origin, $audience, '', '', '', $t['payload']);
            $macOk = hash_equals(substr(hash_hmac('sha256', $input, $k['token_key'], true), 0, self::TOKEN_MAC_BYTES), $t['mac']);
            break;
        }
        if (!$macOk) {
            if ($t['audience_tag'] !== self::audienceTag($audience)) {
                return 'audience-mismatch';
            }
            if ($t['kind'] === 'request' && $t['request_tag'] !== self::requestTag($request['method'], $request['path'], $request['body_sha256'])) {
                return 'request-mismatch';
            }
            return 'forged-token';
        }
        if ($now >= $t['expires_at'] + self::TOKEN_LEEWAY || $now < $t['issued_at'] - self::TOKEN_LEEWAY) {
            return 'token-expired';
        }
        return 'valid';
    }

    /** §3.2: lower-case hex SHA-256 of the token's bytes, prefix included. */
    public static function tokenHash(#[\SensitiveParameter] string $token): string
    {
        return hash('sha256', $token);
    }

    /** §3.4: body_sha256, the digest of the exact body bytes. */
    public static function bodySha256(string $body): string
    {
        return hash('sha256', $body);
    }

    /** §3.4: an action label. */
    public static function isAction(string $action): bool
    {
        return preg_match('/^[A-Za-z0-9._:\/-]{1,64}$/D', $action) === 1;
    }

    /** §3.4: a request method. */
    public static function isMethod(string $method): bool
    {
        return preg_match('/^[A-Z]{1,16}$/D', $method) === 1;
    }

    /** §3.4: a bound path as it appears in a message. */
    public static function isPath(string $path): bool
    {
        return strlen($path) <= self::MAX_PATH && preg_match('/^\/[\x21\x22\x24-\x7e]*$/D', $path) === 1;
    }

    public static function isHex64(string $s): bool
    {
        return preg_match('/^[0-9a-f]{64}$/D', $s) === 1;
    }

    /** §7: a challenge, 43 characters of unpadded base64url. */
    public static function isChallenge(string $s): bool
    {
        return preg_match('/^[A-Za-z0-9_-]{43}$/D', $s) === 1;
    }

    /** §3.4: a subject (the empty string means none). */
    public static function isSubject(string $s): bool
    {
        return strlen($s) <= self::MAX_SUBJECT && preg_match('//u', $s) === 1
            && preg_match('/[\x{0}-\x{1f}\x{7f}-\x{9f}]/u', $s) === 0;
    }

    /** A reason in a rejected answer (§9). */
    public static function isReason(string $s): bool
    {
        return self::isAction($s);
    }

    /**
     * §8 step 2: whether a Content-Type value is application/json. Spaces and
     * tabs removed at both ends, it is an RFC 9110 media-type: the type
     * application/json (ASCII letters of any case), then
     * *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] ), no parameter
     * name twice (case-insensitive), even with equal values. This is
     * wire.IsJSONMediaType; site_handler.json has the cases.
     */
    public static function isJsonMediaType(string $value): bool
    {
        $v = trim($value, " \t");
        if (strlen($v) < 16 || strtolower(substr($v, 0, 16)) !== 'application/json') {
            return false;
        }
        $token = '[!#$%&\'*+\-.^_`|~0-9A-Za-z]+';
        $quoted = '"(?:[\t !#-\[\]-~\x80-\xff]|\\\\[\t -~\x80-\xff])*"';
        $parameter = '/^[ \t]*;[ \t]*(?:(' . $token . ')=(?:' . $token . '|' . $quoted . '))?/';
        $rest = substr($v, 16);
        $seen = [];
        while ($rest !== '') {
            if (preg_match($parameter, $rest, $m) !== 1) {
                return false;
            }
            if (isset($m[1]) && $m[1] !== '') {
                $name = strtolower($m[1]);
                if (isset($seen[$name])) {
                    return false;
                }
                $seen[$name] = true;
            }
            $rest = substr($rest, strlen($m[0]));
        }
        return true;
    }

    /** Whether $s is a canonical origin. */
    public static function isCanonicalOrigin(string $s): bool
    {
        return self::normalizeOrigin($s) === $s;
    }

    /** The origin-form of a request target: itself, or the path and query of an absolute-form one. */
    public static function originForm(string $target): string
    {
        if (preg_match('/^[A-Za-z][A-Za-z0-9+.\-]*:\/\/[^\/?]*(.*)$/Ds', $target, $m) === 1) {
            return ($m[1] === '' || $m[1][0] === '?') ? '/' . $m[1] : $m[1];
        }
        return $target;
    }

    /**
     * §3.4: the `path` a verifier binds for a request target it receives
     * (origin-form, or absolute-form whose path and query count), or null when
     * the request cannot be bound (malformed-request).
     */
    public static function requestPath(string $target): ?string
    {
        if (preg_match('/^[A-Za-z][A-Za-z0-9+.\-]*:\/\/[^\/?]*(.*)$/Ds', $target, $m) === 1) {
            $target = $m[1];
            if ($target === '' || $target[0] === '?') {
                $target = '/' . $target;
            }
        }
        if ($target === '' || $target[0] !== '/') {
            return null;
        }
        $q = strpos($target, '?');
        $path = $q === false ? $target : substr($target, 0, $q);
        $query = $q === false ? '' : substr($target, $q);
        if (preg_match(self::KEPT_PATH, $path) !== 1) {
            if (preg_match('/%(?![0-9A-Fa-f]{2})/', $path) === 1) {
                return null; // an invalid escape: the request itself is refused
            }
            $raw = rawurldecode($path);
            $path = preg_replace_callback(
                '/[^A-Za-z0-9\-._~$&+,\/:;=@]/',
                static fn (array $c): string => sprintf('%%%02X', ord($c[0])),
                $raw,
            );
        }
        $bound = $path . $query;
        return self::isPath($bound) ? $bound : null;
    }

    /** §4: [canonical origin, token] of a Domain-Confirm value, or null. */
    public static function parseHeader(#[\SensitiveParameter] string $value): ?array
    {
        if (strlen($value) > self::MAX_HEADER) {
            return null;
        }
        $parts = explode(' ', $value);
        if (count($parts) !== 3 || $parts[0] !== 'v1' || !self::isToken($parts[2])) {
            return null;
        }
        $origin = self::normalizeOrigin($parts[1]);
        return $origin === null ? null : [$origin, $parts[2]];
    }

    /** §4: the Domain-Confirm value for a canonical origin and a token. */
    public static function formatHeader(string $origin, #[\SensitiveParameter] string $token): string
    {
        return 'v1 ' . $origin . ' ' . $token;
    }

    /** §5.2 */
    public static function signedContent(string $direction, string $id, string $timestamp, string $body): string
    {
        return 'domainconfirm.v1.' . $direction . '.' . $id . '.' . $timestamp . '.' . $body;
    }

    /** §5.3: the Domainconfirm-Signature value, one entry per key, in order. */
    public static function sign(#[\SensitiveParameter] array $keys, string $direction, string $id, int $timestamp, string $body): string
    {
        $content = self::signedContent($direction, $id, (string) $timestamp, $body);
        $entries = [];
        foreach ($keys as $key) {
            $entries[] = 'v1,' . base64_encode(hash_hmac('sha256', $content, $key, true));
        }
        return implode(' ', $entries);
    }

    /**
     * §5.4: null when the message verifies, else what failed first:
     * 'message-id', 'timestamp' or 'signature'. Missing headers are passed as null.
     */
    public static function verify(#[\SensitiveParameter] array $keys, string $direction, ?string $id, ?string $timestamp, ?string $signature, string $body, int $now): ?string
    {
        if ($id === null || preg_match('/^[A-Za-z0-9_-]{1,64}$/D', $id) !== 1) {
            return 'message-id';
        }
        if ($timestamp === null || preg_match('/^(?:0|[1-9][0-9]{0,11})$/D', $timestamp) !== 1
            || abs((int) $timestamp - $now) > self::TOLERANCE) {
            return 'timestamp';
        }
        if ($signature === null || $signature === '' || strlen($signature) > self::MAX_SIGNATURE_HEADER) {
            return 'signature';
        }
        $entries = explode(' ', $signature);
        if (count($entries) > self::MAX_SIGNATURES) {
            return 'signature';
        }
        $content = self::signedContent($direction, $id, $timestamp, $body);
        $macs = [];
        foreach ($keys as $key) {
            $macs[] = hash_hmac('sha256', $content, $key, true);
        }
        $ok = false;
        foreach ($entries as $entry) {
            if (!str_starts_with($entry, 'v1,')) {
                continue;
            }
            $value = substr($entry, 3);
            if (preg_match('/^[A-Za-z0-9+\/]{43}=$/D', $value) !== 1) {
                continue;
            }
            $got = base64_decode($value, true);
            if ($got === false || strlen($got) !== 32 || base64_encode($got) !== $value) {
                continue;
            }
            foreach ($macs as $mac) {
                $ok = hash_equals($mac, $got) || $ok; // compare all, in constant time each
            }
        }
        return $ok ? null : 'signature';
    }

    /** §10.3: the proof that a site holds a key, for a probe challenge. */
    public static function probeProof(#[\SensitiveParameter] string $key, string $challenge): string
    {
        return base64_encode(hash_hmac('sha256', 'domainconfirm.v1.probe.' . $challenge, $key, true));
    }

    /**
     * §6: decode a message body strictly into a stdClass, or null: valid UTF-8,
     * one JSON object and nothing after it but JSON white space, no member
     * name twice in any object (json_decode would keep the last). The caller
     * refuses names not spelled exactly as specified with onlyMembers (PHP
     * property names are case-sensitive, so "Version" is not "version").
     */
    public static function decodeObject(string $body): ?\stdClass
    {
        if (preg_match('//u', $body) !== 1) {
            return null;
        }
        $trimmed = ltrim($body, " \t\r\n");
        if ($trimmed === '' || $trimmed[0] !== '{') {
            return null;
        }
        try {
            $v = json_decode($body, false, 64, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\JsonException) {
            return null;
        }
        return $v instanceof \stdClass && !self::hasDuplicateNames($body) ? $v : null;
    }

    /**
     * §6: whether an object of $json (which json_decode accepted) holds a
     * member name twice, at any depth, even with equal values; names are
     * compared after their escapes are decoded ("typ\u0065" is "type").
     */
    public static function hasDuplicateNames(string $json): bool
    {
        $stack = []; // per open container: the names seen, or null for an array
        $wantName = false;
        $n = strlen($json);
        for ($i = strcspn($json, '{}[]",'); $i < $n; $i += 1 + strcspn($json, '{}[]",', $i + 1)) {
            switch ($json[$i]) {
                case '{':
                    $stack[] = [];
                    $wantName = true;
                    break;
                case '[':
                    $stack[] = null;
                    $wantName = false;
                    break;
                case '}':
                case ']':
                    array_pop($stack);
                    $wantName = false;
                    break;
                case ',':
                    $wantName = $stack !== [] && $stack[count($stack) - 1] !== null;
                    break;
                case '"':
                    $start = $i;
                    for ($i++; $json[$i] !== '"'; $i++) {
                        if ($json[$i] === '\\') {
                            $i++;
                        }
                    }
                    if ($wantName) {
                        $name = substr($json, $start + 1, $i - $start - 1);
                        if (str_contains($name, '\\')) {
                            $name = json_decode('"' . $name . '"', false, 1, JSON_THROW_ON_ERROR);
                        }
                        $top = count($stack) - 1;
                        if (isset($stack[$top][$name])) {
                            return true;
                        }
                        $stack[$top][$name] = true;
                        $wantName = false;
                    }
                    break;
            }
        }
        return false;
    }

    /** Whether $o has only members named in $allowed. */
    public static function onlyMembers(\stdClass $o, array $allowed): bool
    {
        foreach (get_object_vars($o) as $name => $_) {
            if (!in_array((string) $name, $allowed, true)) {
                return false;
            }
        }
        return true;
    }

    /** §7: a validated confirmation request as an array, or null (malformed-message). */
    public static function parseConfirmRequest(\stdClass $m): ?array
    {
        $names = ['version', 'type', 'origin', 'audience', 'token_sha256', 'challenge', 'request'];
        if (!self::onlyMembers($m, $names)) {
            return null;
        }
        foreach ($names as $n) {
            if (!property_exists($m, $n)) {
                return null;
            }
        }
        $r = $m->request;
        if ($m->version !== 1 || $m->type !== 'confirm'
            || !is_string($m->origin) || !self::isCanonicalOrigin($m->origin)
            || !is_string($m->audience) || !self::isCanonicalOrigin($m->audience)
            || !is_string($m->token_sha256) || !self::isHex64($m->token_sha256)
            || !is_string($m->challenge) || !self::isChallenge($m->challenge)
            || !$r instanceof \stdClass || !self::onlyMembers($r, ['method', 'path', 'body_sha256'])
            || !isset($r->method, $r->path, $r->body_sha256)
            || !is_string($r->method) || !self::isMethod($r->method)
            || !is_string($r->path) || !self::isPath($r->path)
            || !is_string($r->body_sha256) || !self::isHex64($r->body_sha256)) {
            return null;
        }
        return [
            'origin' => $m->origin,
            'audience' => $m->audience,
            'token_sha256' => $m->token_sha256,
            'challenge' => $m->challenge,
            'request' => ['method' => $r->method, 'path' => $r->path, 'body_sha256' => $r->body_sha256],
        ];
    }

    /** §10.3: a validated probe as an array, or null (malformed-message). */
    public static function parseProbe(\stdClass $m): ?array
    {
        $names = ['version', 'type', 'origin', 'audience', 'challenge'];
        if (!self::onlyMembers($m, $names)) {
            return null;
        }
        foreach ($names as $n) {
            if (!property_exists($m, $n)) {
                return null;
            }
        }
        if ($m->version !== 1 || $m->type !== 'probe'
            || !is_string($m->origin) || !self::isCanonicalOrigin($m->origin)
            || !is_string($m->audience) || !self::isCanonicalOrigin($m->audience)
            || !is_string($m->challenge) || !self::isChallenge($m->challenge)) {
            return null;
        }
        return ['origin' => $m->origin, 'audience' => $m->audience, 'challenge' => $m->challenge];
    }

    /**
     * JSON the way the Go implementation writes it: members in the order given,
     * no white space, '<' '>' '&' U+2028 U+2029 escaped as \u003c etc., '/' not
     * escaped, other non-ASCII as UTF-8. Arrays with keys 0..n-1 are JSON arrays.
     * Strings must be valid UTF-8.
     */
    public static function encodeJson(mixed $v): string
    {
        if (is_string($v)) {
            if (preg_match('//u', $v) !== 1) {
                throw new \InvalidArgumentException('string is not UTF-8');
            }
            return '"' . preg_replace_callback(
                '/[\x{0}-\x{1f}"\\\\<>&\x{2028}\x{2029}]/u',
                static function (array $c): string {
                    return match ($c[0]) {
                        '"' => '\\"',
                        '\\' => '\\\\',
                        "\n" => '\\n',
                        "\r" => '\\r',
                        "\t" => '\\t',
                        "\x08" => '\\b',
                        "\x0c" => '\\f',
                        "\u{2028}" => '\\u2028',
                        "\u{2029}" => '\\u2029',
                        default => sprintf('\\u%04x', ord($c[0])),
                    };
                },
                $v,
            ) . '"';
        }
        if (is_int($v)) {
            return (string) $v;
        }
        if (is_bool($v)) {
            return $v ? 'true' : 'false';
        }
        if ($v === null) {
            return 'null';
        }
        if (is_array($v)) {
            if (array_is_list($v)) {
                return '[' . implode(',', array_map([self::class, 'encodeJson'], $v)) . ']';
            }
            $members = [];
            foreach ($v as $k => $x) {
                $members[] = self::encodeJson((string) $k) . ':' . self::encodeJson($x);
            }
            return '{' . implode(',', $members) . '}';
        }
        throw new \InvalidArgumentException('cannot encode ' . get_debug_type($v));
    }

    /** The body of a confirmed answer (§9), in Go's member order. */
    public static function confirmedBody(string $challenge, array $record): string
    {
        $answer = ['version' => 1, 'type' => 'confirm', 'challenge' => $challenge, 'result' => 'confirmed'];
        if (($record['subject'] ?? '') !== '') {
            $answer['subject'] = $record['subject'];
        }
        $answer['binding'] = self::bindingMembers($record['binding']);
        $answer['issued_at'] = $record['issued_at'];
        $answer['expires_at'] = $record['expires_at'];
        return self::encodeJson($answer);
    }

    /** The body of a rejected answer (§9). */
    public static function rejectedBody(string $challenge, string $reason): string
    {
        return self::encodeJson(['version' => 1, 'type' => 'confirm', 'challenge' => $challenge, 'result' => 'rejected', 'reason' => $reason]);
    }

    /** A binding's members in the order of §9, only those of its kind. */
    public static function bindingMembers(array $b): array
    {
        if ($b['kind'] === 'request') {
            return ['audience' => $b['audience'], 'kind' => 'request', 'method' => $b['method'], 'path' => $b['path'], 'body_sha256' => $b['body_sha256']];
        }
        return ['audience' => $b['audience'], 'kind' => 'action', 'action' => $b['action']];
    }

    /** §10.3: the body of a probe answer. */
    public static function probeBody(string $challenge, #[\SensitiveParameter] array $keys): string
    {
        $proofs = [];
        foreach ($keys as $key) {
            $proofs[] = self::probeProof($key, $challenge);
        }
        return self::encodeJson(['version' => 1, 'type' => 'probe', 'challenge' => $challenge, 'proofs' => $proofs]);
    }

    /**
     * §7–§8 step 7: the answer body for a validated confirmation request and the
     * record taken from the store (null: none), judged at $now.
     */
    public static function judge(string $siteOrigin, array $request, ?array $record, int $now): string
    {
        $challenge = $request['challenge'];
        if ($record === null) {
            return self::rejectedBody($challenge, 'unknown-token');
        }
        if ($request['origin'] !== $siteOrigin) {
            return self::rejectedBody($challenge, 'wrong-origin');
        }
        if ($now >= $record['expires_at']) {
            return self::rejectedBody($challenge, 'token-expired');
        }
        $b = $record['binding'];
        if ($b['audience'] !== $request['audience']) {
            return self::rejectedBody($challenge, 'audience-mismatch');
        }
        if ($b['kind'] === 'request') {
            $r = $request['request'];
            if ($b['method'] !== $r['method'] || $b['path'] !== $r['path'] || $b['body_sha256'] !== $r['body_sha256']) {
                return self::rejectedBody($challenge, 'request-mismatch');
            }
        }
        return self::confirmedBody($challenge, $record);
    }

    /**
     * A stored record (the JSON written at issue time) back as an array, or null
     * when it is unreadable: the site then answers unknown-token (§8).
     */
    public static function parseRecord(string $json): ?array
    {
        $r = json_decode($json, true);
        if (!is_array($r) || !is_array($r['binding'] ?? null) || !is_int($r['issued_at'] ?? null)
            || !is_int($r['expires_at'] ?? null) || !is_string($r['subject'] ?? '')) {
            return null;
        }
        $b = $r['binding'];
        $common = is_string($b['audience'] ?? null) && self::isCanonicalOrigin($b['audience']);
        $ok = match ($b['kind'] ?? null) {
            'request' => is_string($b['method'] ?? null) && self::isMethod($b['method'])
                && is_string($b['path'] ?? null) && self::isPath($b['path'])
                && is_string($b['body_sha256'] ?? null) && self::isHex64($b['body_sha256']),
            'action' => is_string($b['action'] ?? null) && self::isAction($b['action']),
            default => false,
        };
        if (!$common || !$ok || !self::isSubject($r['subject'] ?? '')) {
            return null;
        }
        return [
            'binding' => self::bindingMembers($b),
            'subject' => $r['subject'] ?? '',
            'issued_at' => $r['issued_at'],
            'expires_at' => $r['expires_at'],
        ];
    }
}

/** An HTTP request as the handlers see it. Header names are matched case-insensitively. */
final class Request
{
    /** @param array<string, list<string>> $headers lower-case name => values */
    public function __construct(
        public readonly string $method,
        public readonly array $headers,
        public readonly ?string $body,
        public readonly ?int $contentLength = null,
        public readonly string $host = '',
    ) {
    }

    /** The request of the running PHP script (php -S, PHP-FPM, mod_php), body read up to $max + 1 bytes. */
    public static function fromGlobals(int $max): self
    {
        $headers = [];
        foreach ($_SERVER as $k => $v) {
            if (!is_string($v) || !str_starts_with($k, 'HTTP_')) {
                continue;
            }
            $name = strtolower(str_replace('_', '-', substr($k, 5)));
            // PHP's servers join a repeated field with ", ". No valid signing header
            // contains ", " (ids and timestamps have no comma, signature entries are
            // "v1," and base64, separated by single spaces), so such a value is a
            // repeated field, which counts as absent (§5.1), as at the Go site.
            $headers[$name] = str_starts_with($name, 'domainconfirm-') && str_contains($v, ', ') ? [$v, ''] : [$v];
        }
        if (isset($_SERVER['CONTENT_TYPE']) && is_string($_SERVER['CONTENT_TYPE'])) {
            $headers['content-type'] = [$_SERVER['CONTENT_TYPE']];
        }
        $length = null;
        if (isset($_SERVER['CONTENT_LENGTH']) && is_string($_SERVER['CONTENT_LENGTH']) && ctype_digit($_SERVER['CONTENT_LENGTH'])) {
            $length = strlen($_SERVER['CONTENT_LENGTH']) > 18 ? PHP_INT_MAX : (int) $_SERVER['CONTENT_LENGTH'];
        }
        $body = null;
        if ($length === null || $length <= $max) {
            $read = @file_get_contents('php://input', false, null, 0, $max + 1);
            $body = $read === false ? null : $read;
        }
        return new self(
            (string) ($_SERVER['REQUEST_METHOD'] ?? 'GET'),
            $headers,
            $body,
            $length,
            (string) ($_SERVER['HTTP_HOST'] ?? ''),
        );
    }

    /** The header's value when it appears exactly once; null when absent; false when repeated. */
    public function header(string $name): string|null|false
    {
        $values = $this->headers[strtolower($name)] ?? [];
        if (count($values) === 0) {
            return null;
        }
        return count($values) === 1 ? $values[0] : false;
    }

    /** Whether Content-Type is application/json, with well-formed parameters or none (§8 step 2). */
    public function isJson(): bool
    {
        $ct = $this->headers['content-type'][0] ?? null; // the first field, as Go's Header.Get
        return is_string($ct) && Wire::isJsonMediaType($ct);
    }
}

/** An HTTP response; emit() sends it from a PHP script. */
final class Response
{
    /** @param array<string, string> $headers */
    public function __construct(
        public readonly int $status,
        public readonly array $headers,
        public readonly string $body,
    ) {
    }

    public function emit(): void
    {
        if (!headers_sent()) {
            header_remove();
            http_response_code($this->status);
            foreach ($this->headers as $name => $value) {
                header($name . ': ' . $value);
            }
            header('Content-Length: ' . strlen($this->body));
        }
        echo $this->body;
    }

    /** Problem titles: for people only, the same as the Go handlers'. */
    private const TITLES = [
        'method-not-allowed' => 'Method not allowed',
        'unsupported-media-type' => 'Unsupported media type',
        'message-too-large' => 'Message too large',
        'malformed-message' => 'Malformed message',
        'bad-message-id' => 'Confirmation request not authenticated',
        'bad-timestamp' => 'Confirmation request not authenticated',
        'bad-signature' => 'Confirmation request not authenticated',
        'store-unavailable' => 'Token store unavailable',
        'wrong-origin' => 'Wrong origin',
        'internal-error' => 'Internal error',
        'cross-origin-refused' => 'Cross-origin request refused',
        'malformed-request' => 'Malformed token request',
        'audience-not-allowed' => 'Audience not allowed',
        'token-refused' => 'Token refused',
        'authorize-failed' => 'Token could not be authorized',
        'issue-failed' => 'Token could not be issued',
        'not-found' => 'Not found',
    ];

    /** An RFC 9457 problem response (§11). Details never hold a token or a secret. */
    public static function problem(int $status, string $reason, string $detail, array $extra = [], ?string $title = null): self
    {
        $body = Wire::encodeJson([
            'type' => Wire::PROBLEM_BASE . $reason,
            'title' => $title ?? self::TITLES[$reason] ?? 'Error',
            'status' => $status,
            'detail' => $detail,
            'reason' => $reason,
        ]);
        return new self($status, [
            'Content-Type' => 'application/problem+json',
            'Cache-Control' => 'no-store',
            'X-Content-Type-Options' => 'nosniff',
        ] + $extra, $body);
    }

    public static function json(int $status, string $body, array $extra = []): self
    {
        return new self($status, ['Content-Type' => 'application/json', 'Cache-Control' => 'no-store'] + $extra, $body);
    }
}

/** A site's token store: records under keys, taken atomically (§8 step 6). */
interface TokenStore
{
    /** Store $record under $key until $expiresAt (Unix seconds). Throws StoreException. */
    public function put(string $key, string $record, int $expiresAt): void;

    /** Look the record up and delete it as one atomic operation; null when absent. Throws StoreException. */
    public function take(string $key): ?string;
}

/**
 * A TokenStore in SQLite through PDO. take() is one DELETE … RETURNING statement,
 * so of any number of concurrent takes of one key exactly one gets the record.
 * Records are kept 5 minutes past their expiry (so a late token is answered
 * token-expired rather than unknown-token), then purged.
 */
final class SqliteTokenStore implements TokenStore
{
    private const PURGE_AFTER = 300;
    private \PDO $db;

    /** @param string|\PDO $db a file path, or an open PDO sqlite connection */
    public function __construct(string|\PDO $db, private readonly ?\Closure $clock = null)
    {
        try {
            if (is_string($db)) {
                $db = new \PDO('sqlite:' . $db, null, null, [\PDO::ATTR_TIMEOUT => 10]);
            }
            $db->setAttribute(\PDO::ATTR_ERRMODE, \PDO::ERRMODE_EXCEPTION);
            $db->exec('PRAGMA busy_timeout = 10000');
            if ($db->query('PRAGMA journal_mode')->fetchColumn() !== 'wal') {
                $db->exec('PRAGMA journal_mode = WAL');
            }
            $db->exec('CREATE TABLE IF NOT EXISTS domainconfirm_tokens ('
                . 'key TEXT PRIMARY KEY NOT NULL, record TEXT NOT NULL, expires_at INTEGER NOT NULL)');
        } catch (\PDOException $e) {
            throw new StoreException('token store: cannot open the database: ' . $e->getMessage(), 0, $e);
        }
        $this->db = $db;
    }

    public function put(string $key, string $record, int $expiresAt): void
    {
        $now = $this->clock ? ($this->clock)() : time();
        try {
            $this->db->prepare('DELETE FROM domainconfirm_tokens WHERE expires_at < ?')
                ->execute([$now - self::PURGE_AFTER]);
            $this->db->prepare('INSERT INTO domainconfirm_tokens (key, record, expires_at) VALUES (?, ?, ?)')
                ->execute([$key, $record, $expiresAt]);
        } catch (\PDOException $e) {
            throw new StoreException('token store: cannot store a token: ' . $e->getCode(), 0, $e);
        }
    }

    public function take(string $key): ?string
    {
        try {
            $stmt = $this->db->prepare('DELETE FROM domainconfirm_tokens WHERE key = ? RETURNING record');
            $stmt->execute([$key]);
            $record = $stmt->fetchColumn();
            $stmt->closeCursor();
        } catch (\PDOException $e) {
            throw new StoreException('token store: cannot take a token: ' . $e->getCode(), 0, $e);
        }
        return is_string($record) ? $record : null;
    }
}

/** A token just issued. The token is a bearer credential: never log it. */
final class Issued
{
    public function __construct(
        #[\SensitiveParameter] public readonly string $token,
        /** The Domain-Confirm header value: "v1 <origin> <token>". */
        #[\SensitiveParameter] public readonly string $header,
        public readonly int $expiresAt,
    ) {
    }

    public function __debugInfo(): array
    {
        return ['token' => '[redacted]', 'header' => '[redacted]', 'expiresAt' => $this->expiresAt];
    }
}

/** Thrown when a token is asked for an audience the site holds no secrets for. */
class UnknownAudience extends \InvalidArgumentException
{
}

/**
 * The site: issues tokens and answers confirmation requests (§8) and probes
 * (§10.3) at its confirmation URL.
 */
final class Site
{
    private readonly string $origin;
    /**
     * The APIs, in the order configured: each its canonical audience, its
     * secrets' HMAC keys in the order configured, and the token key and key
     * id of its first secret, which it issues tokens with (§3.5).
     *
     * @var list<array{audience: string, keys: list<string>, token_key: string, key_id: string}>
     */
    private readonly array $apis;
    private readonly int $ttl;
    private readonly \Closure $clock;
    /** @var list<string> */
    private readonly array $tokenAudiences;

    /**
     * @param string $origin this site's origin, as registered with the APIs
     * @param array $apis for each API this site calls, its audience (the API's
     *   origin) and the 1 to 8 shared secrets "dcsec_…" registered with it,
     *   first the one new tokens are MACed with. Either a map, which keeps
     *   the one-API case to one line:
     *     ['https://api.example' => [getenv('DOMAINCONFIRM_SECRET')]]
     *   (a single secret may be given as a string), or a list
     *     [['audience' => 'https://api.example', 'secrets' => ['dcsec_…']], …].
     *   Confirmation requests are authenticated with each API's secrets in
     *   this order. A secret may not be configured for two APIs. Strip
     *   trailing newlines where you read secrets.
     * @param array{ttl?: int, clock?: \Closure():int, audiences?: list<string>} $options
     *   ttl: token lifetime, 1 to 300 seconds, default 60;
     *   clock: the site's clock in Unix seconds, default time();
     *   audiences: the APIs the token handler (§15) issues tokens for, each
     *   one of $apis; default none.
     */
    public function __construct(string $origin, #[\SensitiveParameter] array $apis, private readonly TokenStore $store, array $options = [])
    {
        $canonical = Wire::normalizeOrigin($origin);
        if ($canonical === null) {
            throw new \InvalidArgumentException('domainconfirm: the site origin is not an https origin');
        }
        $pairs = [];
        if (array_is_list($apis)) {
            foreach ($apis as $i => $api) {
                if (!is_array($api) || !is_string($api['audience'] ?? null) || !array_key_exists('secrets', $api)
                    || count(array_diff(array_keys($api), ['audience', 'secrets'])) !== 0) {
                    throw new \InvalidArgumentException('domainconfirm: API #' . ($i + 1) . ' is not [\'audience\' => …, \'secrets\' => […]]');
                }
                $pairs[] = [$api['audience'], $api['secrets']];
            }
        } else {
            foreach ($apis as $audience => $secrets) {
                $pairs[] = [(string) $audience, $secrets];
            }
        }
        if ($pairs === []) {
            throw new \InvalidArgumentException('domainconfirm: configure at least one API with its secrets');
        }
        $configured = [];
        $allKeys = [];
        foreach ($pairs as $i => [$audience, $secrets]) {
            $where = 'API #' . ($i + 1);
            $aud = Wire::normalizeOrigin($audience);
            if ($aud === null) {
                throw new \InvalidArgumentException("domainconfirm: the audience of $where is not an https origin");
            }
            $where .= " ($aud)";
            foreach ($configured as $c) {
                if ($c['audience'] === $aud) {
                    throw new \InvalidArgumentException("domainconfirm: $where is configured twice");
                }
            }
            $secrets = is_string($secrets) ? [$secrets] : $secrets;
            if (!is_array($secrets) || count($secrets) < 1 || count($secrets) > Wire::MAX_SECRETS) {
                throw new \InvalidArgumentException("domainconfirm: configure 1 to 8 secrets for $where");
            }
            $keys = [];
            $keyIds = [];
            foreach (array_values($secrets) as $j => $secret) {
                $key = is_string($secret) ? Wire::secretKey($secret) : null;
                // Never quote a secret: say which one.
                $which = "secret #" . ($j + 1) . " of $where";
                if ($key === null) {
                    throw new \InvalidArgumentException("domainconfirm: $which is not a valid dcsec_ secret");
                }
                if (in_array($key, $keys, true)) {
                    throw new \InvalidArgumentException("domainconfirm: $which repeats another secret of that API");
                }
                if (isset($allKeys[$key])) {
                    throw new \InvalidArgumentException("domainconfirm: $which is also a secret of {$allKeys[$key]}: every API has secrets of its own (§3.5)");
                }
                $keyId = Wire::tokenKey($key)['key_id'];
                if (in_array($keyId, $keyIds, true)) {
                    throw new \InvalidArgumentException("domainconfirm: $which has the key id of another secret of that API (a 2^-32 chance): generate another secret");
                }
                $keys[] = $key;
                $keyIds[] = $keyId;
                $allKeys[$key] = $where;
            }
            $first = Wire::tokenKey($keys[0]);
            $configured[] = ['audience' => $aud, 'keys' => $keys, 'token_key' => $first['token_key'], 'key_id' => $first['key_id']];
        }
        $ttl = $options['ttl'] ?? Wire::DEFAULT_TTL;
        if (!is_int($ttl) || $ttl < 1 || $ttl > Wire::MAX_TTL) {
            throw new \InvalidArgumentException('domainconfirm: ttl must be 1 to 300 seconds');
        }
        $this->origin = $canonical;
        $this->apis = $configured;
        $tokenAudiences = [];
        foreach ($options['audiences'] ?? [] as $a) {
            $c = is_string($a) ? Wire::normalizeOrigin($a) : null;
            if ($c === null || $this->api($c) === null) {
                throw new \InvalidArgumentException('domainconfirm: every audience of the token handler must be one of the APIs the site has secrets for');
            }
            $tokenAudiences[] = $c;
        }
        $this->ttl = $ttl;
        $this->clock = $options['clock'] ?? static fn (): int => time();
        $this->tokenAudiences = $tokenAudiences;
    }

    public function origin(): string
    {
        return $this->origin;
    }

    /** @return list<string> the audiences of the APIs configured, in order */
    public function audiences(): array
    {
        return array_map(static fn (array $a): string => $a['audience'], $this->apis);
    }

    private function now(): int
    {
        return ($this->clock)();
    }

    /** The configured API of a canonical audience, or null. */
    private function api(string $audience): ?array
    {
        foreach ($this->apis as $api) {
            if ($api['audience'] === $audience) {
                return $api;
            }
        }
        return null;
    }

    /**
     * Issue a token bound to one request the site itself sends (server to
     * server): the API's URL, the method, and the exact body bytes. The target
     * bound is what the API's verifier will rebuild (Wire::requestPath).
     * Throws UnknownAudience when the site has no secrets for the URL's origin.
     */
    public function issueForRequest(string $url, string $method, string $body, string $subject = '', ?int $ttl = null): Issued
    {
        [$audience, $target] = self::splitUrl($url);
        if (!Wire::isMethod($method)) {
            throw new \InvalidArgumentException('domainconfirm: the method is not 1 to 16 upper-case letters');
        }
        $path = Wire::requestPath($target);
        if ($path === null) {
            throw new \InvalidArgumentException('domainconfirm: this request target cannot be bound');
        }
        return $this->issue([
            'audience' => $audience, 'kind' => 'request', 'method' => $method,
            'path' => $path, 'body_sha256' => Wire::bodySha256($body),
        ], $subject, $ttl);
    }

    /**
     * Issue a token bound to an action label, for a page of the site (§3.4).
     * Throws UnknownAudience when the site has no secrets for $audience.
     */
    public function issueForAction(string $audience, string $action, string $subject = '', ?int $ttl = null): Issued
    {
        $canonical = Wire::normalizeOrigin($audience);
        if ($canonical === null) {
            throw new \InvalidArgumentException('domainconfirm: the audience is not an https origin');
        }
        if (!Wire::isAction($action)) {
            throw new \InvalidArgumentException('domainconfirm: not an action label');
        }
        return $this->issue(['audience' => $canonical, 'kind' => 'action', 'action' => $action], $subject, $ttl);
    }

    /**
     * §17 step 2: the signed token of §3.1, MACed with the token key of the
     * first secret of the binding's audience, its record stored under its hash.
     */
    private function issue(array $binding, string $subject, ?int $ttl): Issued
    {
        if (!Wire::isSubject($subject)) {
            throw new \InvalidArgumentException('domainconfirm: the subject is not valid (UTF-8, at most 256 bytes, no control character)');
        }
        $ttl ??= $this->ttl;
        if ($ttl < 1 || $ttl > Wire::MAX_TTL) {
            throw new \InvalidArgumentException('domainconfirm: ttl must be 1 to 300 seconds');
        }
        $api = $this->api($binding['audience']);
        if ($api === null) {
            throw new UnknownAudience('domainconfirm: this site has no secrets for the API ' . $binding['audience']);
        }
        $issuedAt = $this->now();
        $token = Wire::buildToken($api['token_key'], $api['key_id'], $this->origin, $binding, $issuedAt, $ttl, random_bytes(16))['token'];
        $record = ['binding' => $binding, 'subject' => $subject, 'issued_at' => $issuedAt, 'expires_at' => $issuedAt + $ttl];
        $this->store->put($this->storeKey(Wire::tokenHash($token)), Wire::encodeJson($record), $issuedAt + $ttl);
        return new Issued($token, Wire::formatHeader($this->origin, $token), $issuedAt + $ttl);
    }

    /** The store key: "<origin>#<token hash>", so sites sharing a store cannot take each other's tokens. */
    private function storeKey(string $tokenHash): string
    {
        return $this->origin . '#' . $tokenHash;
    }

    /** [canonical audience origin, request target] of an https URL; the target must be sendable as is. */
    public static function splitUrl(string $url): array
    {
        if (preg_match('/^https:\/\/([^\/?#]*)([^#]*)$/Di', $url, $m) !== 1 || preg_match('/^[\x21-\x7e]+$/D', $url) !== 1) {
            throw new \InvalidArgumentException('domainconfirm: the API URL must be https://host[:port]/path[?query], printable ASCII, no fragment');
        }
        $audience = Wire::normalizeOrigin('https://' . $m[1]);
        if ($audience === null) {
            throw new \InvalidArgumentException('domainconfirm: the API URL has no valid https origin');
        }
        $target = $m[2] === '' ? '/' : $m[2];
        if ($target[0] !== '/') {
            $target = '/' . $target;
        }
        return [$audience, $target];
    }

    /** Answer the current PHP request as the confirmation handler and send the response. */
    public function serve(): void
    {
        $this->handle(Request::fromGlobals(Wire::MAX_MESSAGE))->emit();
    }

    /** The confirmation handler (§8) and the probe answer (§10.3). */
    public function handle(Request $r): Response
    {
        if ($r->method !== 'POST') {
            return Response::problem(405, 'method-not-allowed', 'the confirmation URL accepts only POST', ['Allow' => 'POST']);
        }
        if (!$r->isJson()) {
            return Response::problem(415, 'unsupported-media-type', 'a confirmation request is application/json');
        }
        if (($r->contentLength !== null && $r->contentLength > Wire::MAX_MESSAGE)
            || ($r->body !== null && strlen($r->body) > Wire::MAX_MESSAGE)) {
            return Response::problem(413, 'message-too-large', 'a confirmation request is at most 16384 bytes');
        }
        if ($r->body === null) {
            return Response::problem(400, 'malformed-message', 'the request body could not be read');
        }
        $body = $r->body;
        $id = $r->header('domainconfirm-id');
        $ts = $r->header('domainconfirm-timestamp');
        $sig = $r->header('domainconfirm-signature');
        $now = $this->now();
        // §8 step 4: the secrets of one API, then of the next, in the order
        // configured; the API whose secrets verify is the one asking.
        $api = null;
        $failed = 'signature';
        foreach ($this->apis as $candidate) {
            $failed = Wire::verify(
                $candidate['keys'],
                'request',
                is_string($id) ? $id : null,
                is_string($ts) ? $ts : null,
                is_string($sig) ? $sig : null,
                $body,
                $now,
            );
            if ($failed === null) {
                $api = $candidate;
                break;
            }
            if ($failed !== 'signature') {
                break; // the id and the timestamp do not depend on the secrets
            }
        }
        if ($api === null) {
            return match ($failed) {
                'message-id' => self::unauthenticated('bad-message-id', 'Domainconfirm-Id is missing or not 1 to 64 characters of A-Z a-z 0-9 _ -'),
                'timestamp' => self::unauthenticated('bad-timestamp', "Domainconfirm-Timestamp is missing, not decimal Unix seconds, or more than 300 seconds from the site's clock"),
                default => self::unauthenticated('bad-signature', "no entry of Domainconfirm-Signature matches a secret this site holds for an API; check that the API's registration and the site hold a common secret"),
            };
        }
        $message = Wire::decodeObject($body);
        $type = $message !== null && property_exists($message, 'type') ? $message->type : null;
        if ($type === 'probe') {
            $probe = Wire::parseProbe($message);
            if ($probe === null) {
                return Response::problem(400, 'malformed-message', 'the probe does not decode strictly or a member is not valid');
            }
            if ($probe['origin'] !== $this->origin) {
                return Response::problem(400, 'wrong-origin', 'the probe is for another origin than this site serves; fix the registration or the site origin');
            }
            if ($probe['audience'] !== $api['audience']) {
                return self::otherApi();
            }
            return $this->signed($api, $id, Wire::probeBody($probe['challenge'], $api['keys']));
        }
        $request = $message === null ? null : Wire::parseConfirmRequest($message);
        if ($request === null) {
            return Response::problem(400, 'malformed-message', 'the confirmation request does not decode strictly or a member is not valid');
        }
        // §8 step 5: one API cannot ask about, nor consume, tokens in another's name.
        if ($request['audience'] !== $api['audience']) {
            return self::otherApi();
        }
        try {
            $json = $this->store->take($this->storeKey($request['token_sha256']));
        } catch (StoreException $e) {
            error_log('domainconfirm: ' . $e->getMessage()); // no token, no hash, no secret
            return Response::problem(503, 'store-unavailable', 'the token store failed; try again', ['Retry-After' => '1']);
        }
        $record = $json === null ? null : Wire::parseRecord($json);
        return $this->signed($api, $id, Wire::judge($this->origin, $request, $record, $this->now()));
    }

    /** The unsigned 401 of §8 step 4. */
    private static function unauthenticated(string $reason, string $detail): Response
    {
        return Response::problem(401, $reason, $detail, ['WWW-Authenticate' => 'DomainConfirm-Signature error="' . $reason . '"']);
    }

    /** §8 step 5: signed with one API's secrets, naming another API as its audience. */
    private static function otherApi(): Response
    {
        return self::unauthenticated('bad-signature', "the request is signed with the secrets of another API than its audience; each API has secrets of its own");
    }

    /** A signed 200 answer (§9): the request's id, the site's clock, direction "response", the asking API's secrets. */
    private function signed(array $api, string $id, string $body): Response
    {
        $now = $this->now();
        return Response::json(200, $body, [
            'Domainconfirm-Id' => $id,
            'Domainconfirm-Timestamp' => (string) $now,
            'Domainconfirm-Signature' => Wire::sign($api['keys'], 'response', $id, $now, $body),
        ]);
    }

    /**
     * The token handler for the site's own pages (§15): POST
     * {"audience": …, "action": …} → {"header": …, "expires_at": …}, an
     * action token MACed with the first secret of that audience, which must
     * be one of the option `audiences` (else 400 audience-not-allowed).
     *
     * @param \Closure(Request, string $audience, string $action): string $authorize
     *   returns the subject ("" for none) or throws Refused (403 token-refused);
     *   any other exception is 500 authorize-failed.
     * @param list<string> $trustedOrigins other origins whose pages may POST here
     */
    public function handleTokenRequest(Request $r, \Closure $authorize, array $trustedOrigins = []): Response
    {
        if (!self::sameOriginOrTrusted($r, $trustedOrigins)) {
            return Response::problem(403, 'cross-origin-refused', 'a page of another origin may not ask this site for tokens');
        }
        if ($r->method !== 'POST') {
            return Response::problem(405, 'method-not-allowed', 'the token handler accepts only POST', ['Allow' => 'POST']);
        }
        if (!$r->isJson()) {
            return Response::problem(415, 'unsupported-media-type', 'a token request is application/json');
        }
        if (($r->contentLength !== null && $r->contentLength > Wire::MAX_TOKEN_REQUEST)
            || ($r->body !== null && strlen($r->body) > Wire::MAX_TOKEN_REQUEST)) {
            return Response::problem(413, 'message-too-large', 'a token request is at most 4096 bytes', [], 'Token request too large');
        }
        // In the order of the Go handler: decoding, then the audience, then the action label.
        $m = $r->body === null ? null : Wire::decodeObject($r->body);
        if ($m === null || !Wire::onlyMembers($m, ['audience', 'action'])
            || !is_string($m->audience ?? '') || !is_string($m->action ?? '')) {
            return Response::problem(400, 'malformed-request', 'send {"audience": "<API origin>", "action": "<action label>"}');
        }
        $audience = Wire::normalizeOrigin($m->audience ?? '');
        if ($audience === null || !in_array($audience, $this->tokenAudiences, true)) {
            return Response::problem(400, 'audience-not-allowed', 'this site does not issue tokens for that API');
        }
        $action = $m->action ?? '';
        if (!Wire::isAction($action)) {
            return Response::problem(400, 'malformed-request', 'an action label is 1 to 64 characters of A-Z a-z 0-9 . _ : / -');
        }
        try {
            $subject = $authorize($r, $audience, $action);
        } catch (Refused) {
            return Response::problem(403, 'token-refused', 'the site refused to issue a token for this request');
        } catch (\Throwable $e) {
            error_log('domainconfirm: authorize failed: ' . get_class($e));
            return Response::problem(500, 'authorize-failed', 'the site could not decide whether to issue a token');
        }
        if (!is_string($subject) || !Wire::isSubject($subject)) {
            return Response::problem(500, 'authorize-failed', 'the site could not decide whether to issue a token');
        }
        try {
            $issued = $this->issueForAction($audience, $action, $subject);
        } catch (StoreException $e) {
            error_log('domainconfirm: ' . $e->getMessage());
            return Response::problem(503, 'issue-failed', 'the token could not be issued; try again', ['Retry-After' => '1']);
        }
        return Response::json(200, Wire::encodeJson(['header' => $issued->header, 'expires_at' => $issued->expiresAt]));
    }

    /**
     * Cross-origin protection as Go's http.CrossOriginProtection (§15,
     * cross-origin-refused): safe methods pass; then Sec-Fetch-Site
     * same-origin or none passes and any other value is refused; without it,
     * no Origin passes, and an Origin whose host is the request's Host passes.
     * An Origin listed in $trusted always passes.
     */
    private static function sameOriginOrTrusted(Request $r, array $trusted): bool
    {
        if (in_array($r->method, ['GET', 'HEAD', 'OPTIONS'], true)) {
            return true;
        }
        $origin = $r->headers['origin'][0] ?? '';
        $isTrusted = $origin !== '' && in_array($origin, $trusted, true);
        $fetchSite = $r->headers['sec-fetch-site'][0] ?? '';
        if ($fetchSite !== '') {
            return $fetchSite === 'same-origin' || $fetchSite === 'none' || $isTrusted;
        }
        if ($origin === '') {
            return true;
        }
        if (preg_match('/^[A-Za-z][A-Za-z0-9+.\-]*:\/\/([^\/?#]*)/D', $origin, $m) === 1 && $m[1] === $r->host) {
            return true;
        }
        return $isTrusted;
    }
}

/**
 * Calls an API server to server with a request-bound token (PHP's curl):
 * issues the token for exactly this method, URL and body, and sends it in
 * Domain-Confirm. Certificates are always verified; redirects are not followed
 * (a redirected request would no longer match its binding).
 */
final class ApiClient
{
    /**
     * @param string|null $caInfo a PEM file of CAs to trust instead of the system's (CURLOPT_CAINFO)
     * @param array<int, mixed> $curlOptions extra curl options (timeouts, proxy); TLS verification cannot be turned off
     */
    public function __construct(
        private readonly Site $site,
        private readonly ?string $caInfo = null,
        private readonly array $curlOptions = [],
    ) {
    }

    /**
     * Send $method $url with $body and a fresh request-bound token.
     *
     * @param array<string, string> $headers more request headers (Content-Type, Authorization, …)
     * @return array{status: int, headers: array<string, string>, body: string}
     */
    public function call(string $method, string $url, string $body = '', array $headers = [], string $subject = ''): array
    {
        $issued = $this->site->issueForRequest($url, $method, $body, $subject);
        return $this->send($method, $url, $body, $headers, $issued->header);
    }

    /**
     * Send a request with a Domain-Confirm header already issued. call() is
     * what you want; this exists for tests that send another body than bound.
     */
    public function send(string $method, string $url, string $body, array $headers, #[\SensitiveParameter] string $domainConfirm): array
    {
        [, $target] = Site::splitUrl($url); // the same checks as at issue time
        // Send the target in the one spelling the verifier binds (§3.4): it
        // refuses any other as malformed-request.
        $canonical = Wire::requestPath($target);
        if ($canonical === null) {
            throw new \InvalidArgumentException('domainconfirm: this request target cannot be bound');
        }
        $url = substr($url, 0, 8 + strcspn(substr($url, 8), '/?')) . $canonical; // https://authority, then the target
        if (!Wire::isMethod($method)) {
            throw new \InvalidArgumentException('domainconfirm: the method is not 1 to 16 upper-case letters');
        }
        $lines = ['Domain-Confirm: ' . $domainConfirm, 'Expect:'];
        foreach ($headers as $name => $value) {
            $name = (string) $name;
            if (preg_match('/^[!#$%&\'*+\-.^_`|~0-9A-Za-z]+$/D', $name) !== 1 || preg_match('/[\r\n\0]/', (string) $value) === 1
                || in_array(strtolower($name), ['domain-confirm', 'content-length', 'host', 'transfer-encoding'], true)) {
                throw new \InvalidArgumentException('domainconfirm: invalid or reserved request header ' . $name);
            }
            $lines[] = $name . ': ' . $value;
        }
        $responseHeaders = [];
        $ch = curl_init();
        $options = $this->curlOptions + [
            CURLOPT_CONNECTTIMEOUT => 5,
            CURLOPT_TIMEOUT => 30,
        ];
        $options = [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PATH_AS_IS => true,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTPS,
            CURLOPT_SSL_VERIFYPEER => true,
            CURLOPT_SSL_VERIFYHOST => 2,
            CURLOPT_PROXY_SSL_VERIFYPEER => true,
            CURLOPT_PROXY_SSL_VERIFYHOST => 2,
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$responseHeaders): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) {
                    $responseHeaders[strtolower(trim($parts[0]))] = trim($parts[1]);
                }
                return strlen($line);
            },
        ] + $options;
        if ($this->caInfo !== null) {
            $options[CURLOPT_CAINFO] = $this->caInfo;
        }
        if ($body !== '' || !in_array($method, ['GET', 'HEAD'], true)) {
            $options[CURLOPT_POSTFIELDS] = $body;
        }
        if ($method === 'HEAD') {
            $options[CURLOPT_NOBODY] = true;
        }
        curl_setopt_array($ch, $options);
        $out = curl_exec($ch);
        if ($out === false) {
            $error = curl_error($ch);
            curl_close($ch);
            throw new \RuntimeException('domainconfirm: calling the API failed: ' . $error);
        }
        $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        curl_close($ch);
        return ['status' => $status, 'headers' => $responseHeaders, 'body' => (string) $out];
    }
}
