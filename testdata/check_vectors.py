#!/usr/bin/env python3
"""Check testdata/vectors against an implementation of PROTOCOL.md written
from the specification alone, in Python 3.9+ with the standard library only.

    python3 testdata/check_vectors.py            # from the repository root

It prints one line per file and "N passed, N failed" at the end, and exits
non-zero on any failure. Read it as a reference for the site side: every
function below follows one section of PROTOCOL.md.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import sys

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")

B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
ACTION_CHARS = B64URL | set(".:/")
HEX = set("0123456789abcdef")
TOLERANCE = 300
MAX_TTL = 300
MAX_MESSAGE = 16384
DEFAULT_CONFIRM_PATH = "/.well-known/domainconfirm"
SITE_REASONS = ["unknown-token", "wrong-origin", "token-expired", "audience-mismatch", "request-mismatch"]


class Refused(Exception):
    pass


# ---- §2.1 origins ----------------------------------------------------------

def _ipv6_text(addr):
    if addr.ipv4_mapped is not None:
        return "::ffff:" + str(addr.ipv4_mapped)
    groups = [int.from_bytes(addr.packed[i:i + 2], "big") for i in range(0, 16, 2)]
    best_start, best_len, i = -1, 0, 0
    while i < 8:  # longest run of two or more zero groups, the first on a tie
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len and j - i >= 2:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    hexes = ["%x" % g for g in groups]
    if best_start < 0:
        return ":".join(hexes)
    return ":".join(hexes[:best_start]) + "::" + ":".join(hexes[best_start + best_len:])


def _is_ipv4(h):
    parts = h.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p or not p.isascii() or not p.isdigit() or (len(p) > 1 and p[0] == "0") or int(p) > 255:
            return False
    return True


def _canonical_host(h):
    if h.startswith("["):
        if not h.endswith("]") or "%" in h:
            raise Refused("bad IPv6 literal")
        try:
            addr = ipaddress.IPv6Address(h[1:-1])
        except ValueError:
            raise Refused("bad IPv6 literal")
        return "[" + _ipv6_text(addr) + "]"
    if _is_ipv4(h):
        return h
    h = h.lower()
    if not h or len(h) > 253 or h.endswith("."):
        raise Refused("bad host name")
    for label in h.split("."):
        if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            raise Refused("bad label")
        if any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in label):
            raise Refused("bad character in host")
    last = h.split(".")[-1]
    if all(c in "0123456789" for c in last) or (last.startswith("0x") and all(c in HEX for c in last[2:])):
        # The URL Standard parses such a host as IPv4; only dotted-decimal
        # (handled above) is accepted.
        raise Refused("numeric last label, not a dotted-decimal IPv4 address")
    return h


def _split_authority(s):
    """s after "https://": (authority, rest)."""
    end = len(s)
    for c in "/?#":
        i = s.find(c)
        if 0 <= i < end:
            end = i
    return s[:end], s[end:]


def _host_port(authority):
    if "@" in authority:
        raise Refused("user info")
    if authority.startswith("["):
        i = authority.find("]")
        if i < 0:
            raise Refused("unclosed bracket")
        host, after = authority[:i + 1], authority[i + 1:]
        if after and not after.startswith(":"):
            raise Refused("junk after the bracket")
        port = after[1:] if after else None
    else:
        if authority.count(":") > 1:
            raise Refused("colons")
        host, sep, port = authority.partition(":")
        if not sep:
            port = None
    if port is not None:
        if not port or len(port) > 5 or not all(c in "0123456789" for c in port) or not 1 <= int(port) <= 65535:
            raise Refused("bad port")
        port = int(port)
    return host, port


def normalize_origin(s):
    if not 1 <= len(s) <= 300 or any(not 0x21 <= ord(c) <= 0x7E for c in s):
        raise Refused("length or bytes")
    if s[:6].lower() != "https:" or s[6:8] != "//":
        raise Refused("not https://")
    authority, rest = _split_authority(s[8:])
    if rest not in ("", "/"):
        raise Refused("path, query or fragment")
    host, port = _host_port(authority)
    host = _canonical_host(host)
    if port is None or port == 443:
        return "https://" + host
    return "https://%s:%d" % (host, port)


# ---- §2.2 confirmation URL -------------------------------------------------

def confirm_url(origin, raw):
    if raw == "":
        raw = origin + DEFAULT_CONFIRM_PATH
    if len(raw) > 2048 or any(not 0x21 <= ord(c) <= 0x7E for c in raw):
        raise Refused("length or bytes")
    if raw[:6].lower() != "https:" or raw[6:8] != "//":
        raise Refused("not https://")
    if "#" in raw:
        raise Refused("fragment")
    authority, rest = _split_authority(raw[8:])
    if not rest.startswith("/") or "@" in authority:
        raise Refused("path or user info")
    if normalize_origin("https://" + authority) != origin:
        raise Refused("another origin")
    path, q, query = rest.partition("?")
    if _go_escaped_path(path) != path:
        raise Refused("path not written as it is sent")  # §2.2
    return origin + path + q + query  # §2.2: called on the canonical origin, path and query verbatim


# ---- §2.3 secrets ----------------------------------------------------------

def parse_secret(s):
    if not s.startswith("dcsec_"):
        raise Refused("prefix")
    rest = s[len("dcsec_"):]
    if not 43 <= len(rest) <= 86 or len(rest) % 4 == 1 or any(c not in B64URL for c in rest):
        raise Refused("encoding")
    key = base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4))
    if base64.urlsafe_b64encode(key).decode().rstrip("=") != rest:
        raise Refused("non-zero trailing bits")
    if not 32 <= len(key) <= 64:
        raise Refused("length")
    return key


def parse_secrets(secrets):
    if not 1 <= len(secrets) <= 8:
        raise Refused("count")
    keys = [parse_secret(s) for s in secrets]
    if len(set(keys)) != len(keys):
        raise Refused("duplicate")
    return keys


# ---- §3 tokens, hashes, paths ----------------------------------------------

def check_token(t):
    if not t.startswith("dct_"):
        raise Refused("prefix")
    rest = t[4:]
    if not 22 <= len(rest) <= 128 or any(c not in B64URL for c in rest):
        raise Refused("characters")


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def is_hex_sha256(s):
    return isinstance(s, str) and len(s) == 64 and all(c in HEX for c in s)


_KEEP_IF_VALID = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/[]%")
_NO_ESCAPE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~$&+,/:;=@")


def _unescape(p):
    out, i = bytearray(), 0
    b = p.encode()
    while i < len(b):
        if b[i] == 0x25:
            h = b[i + 1:i + 3].decode("latin-1")
            if len(h) != 2 or any(c not in "0123456789abcdefABCDEF" for c in h):
                raise Refused("bad escape")
            out.append(int(h, 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def _go_escaped_path(raw):
    """A path as Go's net/url writes it (§3.4): kept if made of _KEEP_IF_VALID
    and valid escapes, else decoded and re-encoded. A bad escape is refused."""
    decoded = _unescape(raw)
    if all(c in _KEEP_IF_VALID for c in raw):
        return raw
    return "".join(chr(c) if chr(c) in _NO_ESCAPE else "%%%02X" % c for c in decoded)


def bound_path(target):
    """The path a Go API server binds for a request target (§3.4)."""
    if target.startswith("/"):
        rest = target
    elif "://" in target:  # absolute-form
        _, rest = _split_authority(target.split("://", 1)[1])
    else:
        raise Refused("not origin-form")
    raw, q, query = rest.partition("?")
    path = (_go_escaped_path(raw) or "/") + (q + query)
    check_path(path)
    return path


def check_path(p):
    if not isinstance(p, str) or not 1 <= len(p) <= 2048 or p[0] != "/" or any(not 0x21 <= ord(c) <= 0x7E or c == "#" for c in p):
        raise Refused("path")


def check_method(m):
    if not isinstance(m, str) or not 1 <= len(m) <= 16 or any(not "A" <= c <= "Z" for c in m):
        raise Refused("method")


def check_action(a):
    if not isinstance(a, str) or not 1 <= len(a) <= 64 or any(c not in ACTION_CHARS for c in a):
        raise Refused("action")


def check_subject(s):
    if not isinstance(s, str) or len(s.encode("utf-8", "surrogatepass")) > 256:
        raise Refused("subject")
    for c in s:
        o = ord(c)
        if o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0 or 0xD800 <= o < 0xE000:
            raise Refused("subject character")


# ---- §4 header -------------------------------------------------------------

def parse_header(v):
    if len(v.encode()) > 1024:
        raise Refused("too long")
    if not v.startswith("v1 "):
        raise Refused("version")
    parts = v[3:].split(" ")
    if len(parts) != 2:
        raise Refused("parts")
    origin = normalize_origin(parts[0])
    check_token(parts[1])
    return origin, parts[1]


# ---- §5 signatures ---------------------------------------------------------

def signed_content(direction, msg_id, ts, body):
    return b"domainconfirm.v1." + direction.encode() + b"." + msg_id.encode() + b"." + str(ts).encode() + b"." + body


def sign(keys, direction, msg_id, ts, body):
    content = signed_content(direction, msg_id, ts, body)
    return " ".join("v1," + base64.b64encode(hmac.new(k, content, hashlib.sha256).digest()).decode() for k in keys)


class SigError(Refused):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def verify(keys, direction, msg_id, timestamp, signature, body, now):
    if not 1 <= len(msg_id) <= 64 or any(c not in B64URL for c in msg_id):
        raise SigError("message-id")
    if not 1 <= len(timestamp) <= 12 or any(c not in "0123456789" for c in timestamp):
        raise SigError("timestamp")
    if len(timestamp) > 1 and timestamp[0] == "0":
        raise SigError("timestamp")  # no leading zeros
    if abs(now - int(timestamp)) > TOLERANCE:
        raise SigError("timestamp")
    if not signature or len(signature) > 1024:
        raise SigError("signature")
    entries = signature.split(" ")
    if len(entries) > 8:
        raise SigError("signature")
    macs = []
    for e in entries:
        if not e.startswith("v1,"):
            continue
        v = e[3:]
        if len(v) != 44:
            continue
        try:
            mac = base64.b64decode(v, validate=True)
        except ValueError:
            continue
        if len(mac) == 32 and base64.b64encode(mac).decode() == v:
            macs.append(mac)
    if not macs:
        raise SigError("signature")
    content = signed_content(direction, msg_id, int(timestamp), body)
    ok = False
    for k in keys:
        want = hmac.new(k, content, hashlib.sha256).digest()
        for mac in macs:
            ok |= hmac.compare_digest(mac, want)
    if not ok:
        raise SigError("signature")


# ---- §6, §7, §9 messages ---------------------------------------------------

def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Refused("duplicate member " + k)
        obj[k] = v
    return obj


def _refuse(s):
    raise Refused("not an integer: " + s)


def decode(body):
    """Strict decoding: UTF-8, one object, no duplicates, integers only (§6)."""
    try:
        v = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_float=_refuse, parse_constant=_refuse)
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused("not JSON: %s" % e)
    if not isinstance(v, dict):
        raise Refused("not an object")
    return v


def _members(obj, required, optional=()):
    if not isinstance(obj, dict):
        raise Refused("not an object")
    for k in obj:
        if k not in required and k not in optional:
            raise Refused("unknown member " + k)
    for k in required:
        if k not in obj:
            raise Refused("missing member " + k)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _absent_int(v):
    return v is None or (_int(v) and v == 0)


def _canonical(o):
    try:
        return isinstance(o, str) and normalize_origin(o) == o
    except Refused:
        return False


def _check_challenge(c):
    if not isinstance(c, str) or len(c) != 43 or any(ch not in B64URL for ch in c):
        raise Refused("challenge")


def _check_request_info(r):
    _members(r, ("method", "path", "body_sha256"))
    check_method(r["method"])
    check_path(r["path"])
    if not is_hex_sha256(r["body_sha256"]):
        raise Refused("body_sha256")


def check_request(m):
    _members(m, ("version", "type", "origin", "audience", "token_sha256", "challenge", "request"))
    if not _int(m["version"]) or m["version"] != 1 or m["type"] != "confirm":
        raise Refused("version or type")
    if not _canonical(m["origin"]) or not _canonical(m["audience"]):
        raise Refused("origin or audience")
    if not is_hex_sha256(m["token_sha256"]):
        raise Refused("token_sha256")
    _check_challenge(m["challenge"])
    _check_request_info(m["request"])


def check_binding(b):
    _members(b, ("audience", "kind"), ("method", "path", "body_sha256", "action"))
    if not _canonical(b["audience"]):
        raise Refused("binding audience")
    if b["kind"] == "request":
        if b.get("action", ""):
            raise Refused("action in a request binding")
        _check_request_info({k: b.get(k, "") for k in ("method", "path", "body_sha256")})
    elif b["kind"] == "action":
        if any(b.get(k, "") for k in ("method", "path", "body_sha256")):
            raise Refused("request members in an action binding")
        check_action(b.get("action", ""))
    else:
        raise Refused("kind")


def check_response(m):
    _members(m, ("version", "type", "challenge", "result"), ("reason", "subject", "binding", "issued_at", "expires_at"))
    if not _int(m["version"]) or m["version"] != 1 or m["type"] != "confirm":
        raise Refused("version or type")
    _check_challenge(m["challenge"])
    if m["result"] == "confirmed":
        if m.get("reason", ""):
            raise Refused("reason in a confirmed answer")
        if m.get("binding") is None:
            raise Refused("no binding")
        check_binding(m["binding"])
        check_subject(m.get("subject", ""))
        i, e = m.get("issued_at", 0), m.get("expires_at", 0)
        if not _int(i) or not _int(e) or i <= 0 or e <= i or e - i > MAX_TTL:
            raise Refused("issued_at / expires_at")
    elif m["result"] == "rejected":
        check_action(m.get("reason", ""))
        if m.get("subject", "") or m.get("binding") is not None:
            raise Refused("subject or binding in a rejected answer")
        if not _absent_int(m.get("issued_at")) or not _absent_int(m.get("expires_at")):
            raise Refused("issued_at or expires_at in a rejected answer")
    else:
        raise Refused("result")


def site_answer(record, req, site_origin, now):
    """§8 step 7: the decision, given the record just taken (or None)."""
    ans = {"version": 1, "type": "confirm", "challenge": req["challenge"], "result": "rejected"}
    if record is None:
        ans["reason"] = "unknown-token"
    elif req["origin"] != site_origin:
        ans["reason"] = "wrong-origin"
    elif now >= record["expires_at"]:
        ans["reason"] = "token-expired"
    elif record["binding"]["audience"] != req["audience"]:
        ans["reason"] = "audience-mismatch"
    elif record["binding"]["kind"] == "request" and any(
            record["binding"][k] != req["request"][k] for k in ("method", "path", "body_sha256")):
        ans["reason"] = "request-mismatch"
    else:
        ans["result"] = "confirmed"
        if record.get("subject"):
            ans["subject"] = record["subject"]
        ans["binding"] = record["binding"]
        ans["issued_at"], ans["expires_at"] = record["issued_at"], record["expires_at"]
    return ans


# ---- §10.3 probes ------------------------------------------------------------

def probe_proof(key, challenge):
    """The proof of one key: over the challenge's 43 ASCII characters, not its decoded bytes."""
    return base64.b64encode(hmac.new(key, b"domainconfirm.v1.probe." + challenge.encode(), hashlib.sha256).digest()).decode()


def check_probe(m):
    _members(m, ("version", "type", "origin", "audience", "challenge"))
    if not _int(m["version"]) or m["version"] != 1 or m["type"] != "probe":
        raise Refused("version or type")
    if not _canonical(m["origin"]) or not _canonical(m["audience"]):
        raise Refused("origin or audience")
    _check_challenge(m["challenge"])


def check_probe_response(m):
    _members(m, ("version", "type", "challenge", "proofs"))
    if not _int(m["version"]) or m["version"] != 1 or m["type"] != "probe":
        raise Refused("version or type")
    _check_challenge(m["challenge"])
    if not isinstance(m["proofs"], list) or not 1 <= len(m["proofs"]) <= 8 or not all(isinstance(p, str) for p in m["proofs"]):
        raise Refused("proofs")


def go_json(v):
    """JSON as the Go site writes it (§6): no white space, <, >, &, U+2028, U+2029 escaped."""
    s = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(ch, esc)
    return s.encode()


# ---- §8 steps 1 to 5, §10.3, §15: the site's HTTP handlers ---------------------

_TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WS = " \t\n\v\f\r"


def is_json_media_type(value):
    """§8 step 2: application/json (case-insensitive) with well-formed, unrepeated parameters."""
    base, semi, rest = value.partition(";")
    if base.strip(_WS).lower() != "application/json":
        return False
    rest, seen = semi + rest, set()
    while True:
        rest = rest.lstrip(_WS)
        if not rest:
            return True
        i = 1
        while i < len(rest) and rest[i] in _WS:
            i += 1
        j = i
        while j < len(rest) and rest[j] in _TOKEN_CHARS:
            j += 1
        name = rest[i:j].lower()
        k = j
        while k < len(rest) and rest[k] in _WS:
            k += 1
        if rest[0] != ";" or not name or k >= len(rest) or rest[k] != "=":
            return rest.strip(_WS) == ";"
        k += 1
        while k < len(rest) and rest[k] in _WS:
            k += 1
        if k < len(rest) and rest[k] == '"':
            m = k + 1
            while m < len(rest) and rest[m] != '"':
                m += 2 if rest[m] == "\\" else 1
            if m >= len(rest):
                return False
            end = m + 1
        else:
            end = k
            while end < len(rest) and rest[end] in _TOKEN_CHARS:
                end += 1
            if end == k:
                return False
        if name in seen:
            return False
        seen.add(name)
        rest = rest[end:]


def _once(headers, name):
    """A signing header counts only when it appears exactly once (§5.1)."""
    values = [v for n, v in headers if n.lower() == name.lower()]
    return values[0] if len(values) == 1 else ""


def _first(headers, name):
    values = [v for n, v in headers if n.lower() == name.lower()]
    return values[0] if values else ""


def site_handle(method, headers, body, site_origin, keys, now):
    """The confirmation handler (§8) with an empty store: (status, reason)."""
    if method != "POST":
        return 405, "method-not-allowed"
    if not is_json_media_type(_first(headers, "Content-Type")):
        return 415, "unsupported-media-type"
    if len(body) > MAX_MESSAGE:
        return 413, "message-too-large"
    try:
        verify(keys, "request", _once(headers, "Domainconfirm-Id"), _once(headers, "Domainconfirm-Timestamp"),
               _once(headers, "Domainconfirm-Signature"), body, now)
    except SigError as e:
        return 401, {"message-id": "bad-message-id", "timestamp": "bad-timestamp"}.get(e.kind, "bad-signature")
    try:
        m = decode(body)
        if m.get("type") == "probe":
            check_probe(m)
            return (200, "") if m["origin"] == site_origin else (400, "wrong-origin")
        check_request(m)
    except Refused:
        return 400, "malformed-message"
    return 200, site_answer(None, m, site_origin, now)["reason"]


def token_handle(method, headers, body, audiences, authorize):
    """The token handler (§15): (status, reason)."""
    if method not in ("GET", "HEAD", "OPTIONS"):
        origin, fetch_site = _first(headers, "Origin"), _first(headers, "Sec-Fetch-Site")
        if fetch_site:
            cross = fetch_site not in ("same-origin", "none")
        else:
            cross = bool(origin) and origin.partition("://")[2].split("/")[0] != _first(headers, "Host")
        if cross:
            return 403, "cross-origin-refused"
    if method != "POST":
        return 405, "method-not-allowed"
    if not is_json_media_type(_first(headers, "Content-Type")):
        return 415, "unsupported-media-type"
    if len(body) > 4096:
        return 413, "message-too-large"
    try:
        m = decode(body)
        _members(m, (), ("audience", "action"))
        if not isinstance(m.get("audience", ""), str) or not isinstance(m.get("action", ""), str):
            raise Refused("types")
    except Refused:
        return 400, "malformed-request"
    try:
        if normalize_origin(m.get("audience", "")) not in audiences:
            return 400, "audience-not-allowed"
    except Refused:
        return 400, "audience-not-allowed"
    try:
        check_action(m.get("action", ""))
    except Refused:
        return 400, "malformed-request"
    outcome = authorize(m["action"])
    if outcome == "refused":
        return 403, "token-refused"
    try:
        if outcome == "failed":
            raise Refused("hook failed")
        check_subject(outcome)
    except Refused:
        return 500, "authorize-failed"
    return 200, ""


# ---- the checks ------------------------------------------------------------

class Counter:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("  FAIL:", what)


def refused(f, *args):
    try:
        f(*args)
    except Refused:
        return True
    return False


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as fh:
        return json.load(fh)


def check_simple(c):
    for v in load("origins.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(normalize_origin, v["input"]) and normalize_origin(v["input"]) == v["canonical"], "origin %r" % v["input"])
        else:
            c.check(refused(normalize_origin, v["input"]), "origin %r should be refused" % v["input"])
    for v in load("confirm_urls.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(confirm_url, v["origin"], v["confirm_url"]) and confirm_url(v["origin"], v["confirm_url"]) == v["url"], "confirm URL %r" % v["confirm_url"])
        else:
            c.check(refused(confirm_url, v["origin"], v["confirm_url"]), "confirm URL %r should be refused" % v["confirm_url"])
    for v in load("secrets.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(parse_secret, v["secret"]) and parse_secret(v["secret"]).hex() == v["key_hex"], "secret: " + v["note"])
        else:
            c.check(refused(parse_secret, v["secret"]), "secret should be refused: " + v["note"])
    for v in load("tokens.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(check_token, v["token"]) and sha256_hex(v["token"].encode()) == v["sha256"], "token: " + v["note"])
        else:
            c.check(refused(check_token, v["token"]), "token should be refused: " + v["note"])
    for v in load("bodies.json")["vectors"]:
        b = base64.b64decode(v["body_base64"])
        c.check(sha256_hex(b) == v["sha256"] and (v.get("body") is None or v["body"].encode() == b), "body: " + v["note"])
    for v in load("paths.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(bound_path, v["target"]) and bound_path(v["target"]) == v["path"], "path %r" % v["target"])
        else:
            c.check(refused(bound_path, v["target"]), "path %r should be refused" % v["target"])
    for v in load("headers.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(parse_header, v["header"]) and parse_header(v["header"]) == (v["origin"], v["token"]), "header: " + v["note"])
        else:
            c.check(refused(parse_header, v["header"]), "header should be refused: " + v["note"])


def check_messages(c):
    f = load("messages.json")
    c.check(f["max_bytes"] == MAX_MESSAGE, "messages: max_bytes")
    c.check(f["site_reasons"] == SITE_REASONS, "messages: site_reasons")
    for v in f["vectors"]:
        body = base64.b64decode(v["body_base64"])
        if v.get("body") is not None:
            c.check(v["body"].encode() == body, "message body string: " + v["note"])
        check = check_response if v["message"] == "response" else check_request
        ok = not refused(lambda: check(decode(body)))
        c.check(ok == v["valid"], "message (%s) should be %s: %s" % (v["message"], "valid" if v["valid"] else "refused", v["note"]))


def check_signatures(c):
    f = load("signatures.json")
    keys = {n: parse_secret(s["secret"]) for n, s in f["secrets"].items()}
    for n, s in f["secrets"].items():
        c.check(keys[n].hex() == s["key_hex"], "key " + n)
    for v in f["signing"]:
        ks = [keys[n] for n in v["secrets"]]
        body = v["body"].encode()
        c.check(signed_content(v["direction"], v["id"], v["timestamp"], body).decode() == v["signed_content"], "signed content: " + v["name"])
        c.check(sign(ks, v["direction"], v["id"], v["timestamp"], body) == v["signature"], "signature: " + v["name"])
    for v in f["verification"]:
        ks = [keys[n] for n in v["secrets"]]
        try:
            verify(ks, v["direction"], v["id"], v["timestamp"], v["signature"], v["body"].encode(), v["now"])
            c.check(v["valid"], "verification should fail: " + v["name"])
        except SigError as e:
            c.check(not v["valid"] and e.kind == v["error"], "verification (%s): %s" % (e.kind, v["name"]))


def check_confirmation(c):
    f = load("confirmation.json")
    reg = f["registration"]
    keys = parse_secrets(reg["secrets"])
    origin, audience = reg["origin"], f["audience"]
    c.check(normalize_origin(origin) == origin and normalize_origin(audience) == audience, "canonical origins")
    for x in f["exchanges"]:
        name, now = x["name"], x["now"]
        api = x["api_request"]
        c.check(parse_header(api["headers"]["Domain-Confirm"]) == (origin, x["token"]), name + ": header")
        c.check(sha256_hex(x["token"].encode()) == x["token_sha256"], name + ": token hash")
        c.check(sha256_hex(api["body"].encode()) == api["body_sha256"], name + ": body digest")
        c.check(bound_path(api["target"]) == api["target"], name + ": target")

        # The site's side: verify, decode, check, judge.
        cr = x["confirmation_request"]
        h = cr["headers"]
        body = cr["body"].encode()
        c.check(cr["url"] == confirm_url(origin, reg["confirm_url"]), name + ": URL")
        c.check(cr["method"] == "POST" and h["Content-Type"] == "application/json" and int(h["Content-Length"]) == len(body), name + ": request headers")
        c.check(len(body) <= MAX_MESSAGE, name + ": request size")
        verify(keys, "request", h["Domainconfirm-Id"], h["Domainconfirm-Timestamp"], h["Domainconfirm-Signature"], body, now)
        c.check(refused(verify, keys, "response", h["Domainconfirm-Id"], h["Domainconfirm-Timestamp"], h["Domainconfirm-Signature"], body, now), name + ": request not a response")
        c.check(sign(keys, "request", h["Domainconfirm-Id"], int(h["Domainconfirm-Timestamp"]), body) == h["Domainconfirm-Signature"], name + ": request re-signed")
        req = decode(body)
        check_request(req)
        c.check(req["origin"] == origin and req["audience"] == audience and req["token_sha256"] == x["token_sha256"], name + ": request members")
        c.check(req["request"] == {"method": api["method"], "path": api["target"], "body_sha256": api["body_sha256"]}, name + ": request info")
        if x["site_record"] is not None:
            check_binding(x["site_record"]["binding"])
        want = site_answer(x["site_record"], req, origin, now)

        # The verifier's side: verify, decode, check, compare.
        cs = x["confirmation_response"]
        rh = cs["headers"]
        rbody = cs["body"].encode()
        c.check(cs["status"] == 200 and rh["Content-Type"] == "application/json" and int(rh["Content-Length"]) == len(rbody), name + ": response headers")
        c.check(rh["Domainconfirm-Id"] == h["Domainconfirm-Id"], name + ": id echoed")
        verify(keys, "response", rh["Domainconfirm-Id"], rh["Domainconfirm-Timestamp"], rh["Domainconfirm-Signature"], rbody, now)
        c.check(refused(verify, keys, "request", rh["Domainconfirm-Id"], rh["Domainconfirm-Timestamp"], rh["Domainconfirm-Signature"], rbody, now), name + ": response not a request")
        c.check(sign(keys, "response", rh["Domainconfirm-Id"], int(rh["Domainconfirm-Timestamp"]), rbody) == rh["Domainconfirm-Signature"], name + ": response re-signed")
        ans = decode(rbody)
        check_response(ans)
        c.check(hmac.compare_digest(ans["challenge"], req["challenge"]), name + ": challenge echoed")
        c.check(ans == want, name + ": the site's decision")
        out = x["outcome"]
        c.check(ans["result"] == out["result"] and ans.get("reason", "") == out.get("reason", "") and ans.get("subject", "") == out.get("subject", ""), name + ": outcome")
        if ans["result"] == "confirmed":
            b = ans["binding"]
            c.check(b["audience"] == audience, name + ": audience")
            if b["kind"] == "request":
                c.check(all(b[k] == req["request"][k] for k in ("method", "path", "body_sha256")), name + ": binding matches")
            c.check(ans["expires_at"] >= now - TOLERANCE, name + ": not long expired")


def check_probes(c):
    f = load("probes.json")
    reg = f["registration"]
    keys = parse_secrets(reg["secrets"])
    for v in f["proofs"]:
        c.check(v["proof_input"] == "domainconfirm.v1.probe." + v["challenge"], "proof input: " + v["name"])
        c.check(probe_proof(bytes.fromhex(v["key_hex"]), v["challenge"]) == v["proof"], "proof: " + v["name"])
    for v in f["messages"]:
        check = check_probe if v["message"] == "probe" else check_probe_response
        ok = not refused(lambda: check(decode(base64.b64decode(v["body_base64"]))))
        c.check(ok == v["valid"], "%s should be %s: %s" % (v["message"], "valid" if v["valid"] else "refused", v["note"]))
    for x in f["exchanges"]:
        name, now = x["name"], x["now"]
        pr = x["probe_request"]
        h, body = pr["headers"], pr["body"].encode()
        c.check(pr["url"] == confirm_url(reg["origin"], reg["confirm_url"]), name + ": URL")
        c.check(sign(keys, "request", h["Domainconfirm-Id"], int(h["Domainconfirm-Timestamp"]), body) == h["Domainconfirm-Signature"], name + ": request signed")
        probe = decode(body)
        check_probe(probe)
        site_keys = parse_secrets(x["site_secrets"])
        status, reason = site_handle("POST", list(h.items()), body, x["site_origin"], site_keys, now + 1)
        ps = x["probe_response"]
        c.check(status == ps["status"] and reason == x.get("reason", ""), name + ": the site's status and reason")
        if ps["status"] != 200:
            continue
        rh, rbody = ps["headers"], ps["body"].encode()
        want = {"version": 1, "type": "probe", "challenge": probe["challenge"], "proofs": [probe_proof(k, probe["challenge"]) for k in site_keys]}
        c.check(rbody == go_json(want), name + ": answer bytes")
        c.check(rh["Domainconfirm-Id"] == h["Domainconfirm-Id"] and rh["Domainconfirm-Timestamp"] == str(now + 1), name + ": answer headers")
        c.check(sign(site_keys, "response", rh["Domainconfirm-Id"], now + 1, rbody) == rh["Domainconfirm-Signature"], name + ": answer signed")
        ans = decode(rbody)
        check_probe_response(ans)
        held = [i + 1 for i, k in enumerate(keys) if probe_proof(k, probe["challenge"]) in ans["proofs"]]
        c.check(held == x["secrets_held"], name + ": secrets held")


def check_site_handler(c):
    f = load("site_handler.json")
    keys = parse_secrets(f["site"]["secrets"])
    for v in f["confirmation"]:
        got = site_handle(v["method"], v["headers"], v["body"].encode(), f["site"]["origin"], keys, f["now"])
        c.check(got == (v["status"], v["reason"]), "confirmation handler: %s: got %r" % (v["note"], got))
    th = f["token_handler"]

    def authorize(action):
        return {"refuse": "refused", "fail": "failed", "bad-subject": "\x07"}.get(action, "user-17")

    for v in th["vectors"]:
        got = token_handle(v["method"], v["headers"], v["body"].encode(), th["audiences"], authorize)
        c.check(got == (v["status"], v["reason"]), "token handler: %s: got %r" % (v["note"], got))


def main():
    total = Counter()
    for name, fn in (("origins, confirm URLs, secrets, tokens, bodies, paths, headers", check_simple),
                     ("messages", check_messages), ("signatures", check_signatures), ("confirmation", check_confirmation),
                     ("probes", check_probes), ("site handlers", check_site_handler)):
        c = Counter()
        try:
            fn(c)
        except Refused as e:
            c.failed += 1
            print("  FAIL: refused:", e)
        print("%-66s %4d passed, %d failed" % (name, c.passed, c.failed))
        total.passed += c.passed
        total.failed += c.failed
    print("%d passed, %d failed" % (total.passed, total.failed))
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
