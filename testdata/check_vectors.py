#!/usr/bin/env python3
"""Check testdata/vectors against an implementation of PROTOCOL.md written
from the specification alone, in Python 3.9+ with the standard library only.

    python3 testdata/check_vectors.py            # from the repository root

It prints one line per group of files and "N passed, N failed" at the end, and
exits non-zero on any failure (a vector file or member it does not know is a
failure too). Read it as a reference for the site side: every function below
follows one section of PROTOCOL.md; tokens (§3.1-§3.5: HKDF key derivation,
construction, syntax, the verifier's local check of §10.1 step 5) included.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import re
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

TOKEN_PREFIX = "dct_"
TOKEN_LEEWAY = 30          # §3.3: the verifier's leeway at the local level, either way
KIND_REQUEST, KIND_ACTION = 1, 2
KIND_NAMES = {KIND_REQUEST: "request", KIND_ACTION: "action"}
MAX_ISSUED_AT = 1 << 40    # §3.1: issued_at is 1 to 2^40
TOKEN_KEY_INFO = b"domainconfirm.v1.token-key"
KEY_ID_INFO = b"domainconfirm.v1.key-id"
TOKEN_MAC_LABEL = b"domainconfirm.v1.token"


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def is_hex_sha256(s):
    return isinstance(s, str) and len(s) == 64 and all(c in HEX for c in s)


def hkdf_sha256(ikm, info, length, salt=b""):
    """RFC 5869 with SHA-256. An empty salt is HashLen (32) zero bytes."""
    if not salt:
        salt = b"\x00" * 32
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()            # extract
    okm, block, i = b"", b"", 1
    while len(okm) < length:                                       # expand
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
        i += 1
    return okm[:length]


def token_key(key):
    """§3.5: the token key of a secret's key bytes."""
    return hkdf_sha256(key, TOKEN_KEY_INFO, 32)


def key_id(key):
    """§3.5: the 4-byte key id of a secret's key bytes."""
    return hkdf_sha256(key, KEY_ID_INFO, 4)


def audience_tag(audience):
    return hashlib.sha256(audience.encode()).digest()[:4]


def request_tag(method, path, body_sha256):
    # §3.1: SHA-256(method LF path LF body_sha256), body_sha256 as its 64 hex characters
    return hashlib.sha256("\n".join((method, path, body_sha256)).encode()).digest()[:4]


def token_payload(kid, kind, issued_at, lifetime, nonce, audience, method="", path="", body_sha256="", action=""):
    """§3.1: every token byte before the MAC, integers big-endian."""
    p = bytes([1, kind]) + kid + issued_at.to_bytes(8, "big") + lifetime.to_bytes(2, "big") + nonce + audience_tag(audience)
    if kind == KIND_REQUEST:
        return p + request_tag(method, path, body_sha256)
    return p + bytes([len(action)]) + action.encode()


def token_mac_input(origin, audience, method, path, body_sha256, payload):
    """§3.1: the MAC input; method, path and body_sha256 are empty for an action token."""
    return b"\n".join((TOKEN_MAC_LABEL, origin.encode(), audience.encode(), method.encode(), path.encode(),
                       body_sha256.encode(), payload))


def token_mac(tkey, mac_input):
    return hmac.new(tkey, mac_input, hashlib.sha256).digest()[:16]


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def issue_token(key, origin, binding, issued_at, lifetime, nonce):
    """§3.1, §17 step 2: a token for binding, MACed with the token key of the secret key bytes `key`.
    Returns (payload, mac_input, mac, token)."""
    check_binding(binding)
    if not 1 <= lifetime <= MAX_TTL or not 1 <= issued_at <= MAX_ISSUED_AT or len(nonce) != 16:
        raise Refused("lifetime, issued_at or nonce")
    audience = binding["audience"]
    if binding["kind"] == "request":
        m, p, b = binding["method"], binding["path"], binding["body_sha256"]
        payload = token_payload(key_id(key), KIND_REQUEST, issued_at, lifetime, nonce, audience, m, p, b)
    else:
        m = p = b = ""
        payload = token_payload(key_id(key), KIND_ACTION, issued_at, lifetime, nonce, audience, action=binding["action"])
    mac_input = token_mac_input(origin, audience, m, p, b, payload)
    mac = token_mac(token_key(key), mac_input)
    return payload, mac_input, mac, TOKEN_PREFIX + b64url(payload + mac)


class Token:
    """A token that passed the syntax of §3.1 (its MAC is not checked)."""

    def __init__(self, text, raw):
        self.text, self.raw = text, raw
        self.kind = raw[1]
        self.key_id = raw[2:6]
        self.issued_at = int.from_bytes(raw[6:14], "big")
        self.lifetime = int.from_bytes(raw[14:16], "big")
        self.expires_at = self.issued_at + self.lifetime
        self.nonce = raw[16:32]
        self.audience_tag = raw[32:36]
        self.request_tag = raw[36:40] if self.kind == KIND_REQUEST else None
        self.action = raw[37:37 + raw[36]].decode() if self.kind == KIND_ACTION else ""
        self.payload, self.mac = raw[:-16], raw[-16:]
        self.sha256 = sha256_hex(text.encode())


def parse_token(t):
    """§3.1: the syntax of a token; malformed-token on any failure."""
    if not isinstance(t, str) or not t.startswith(TOKEN_PREFIX):
        raise Refused("prefix")
    rest = t[len(TOKEN_PREFIX):]
    if not 72 <= len(rest) <= 156 or any(c not in B64URL for c in rest) or len(rest) % 4 == 1:
        raise Refused("characters or length")
    raw = base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4))
    if b64url(raw) != rest:
        raise Refused("non-canonical encoding")
    if raw[0] != 1:
        raise Refused("version")
    if raw[1] == KIND_REQUEST:
        if len(raw) != 56:
            raise Refused("length of a request token")
    elif raw[1] == KIND_ACTION:
        n = raw[36] if len(raw) > 36 else 0
        if not 1 <= n <= 64 or len(raw) != 36 + 1 + n + 16:
            raise Refused("length of an action token")
        try:
            check_action(raw[37:37 + n].decode("ascii"))
        except UnicodeDecodeError:
            raise Refused("action label")
    else:
        raise Refused("kind")
    tok = Token(t, raw)
    if not 1 <= tok.lifetime <= MAX_TTL:
        raise Refused("lifetime")
    if not 1 <= tok.issued_at <= MAX_ISSUED_AT:
        raise Refused("issued_at")
    return tok


def token_keys(keys):
    """§3.5: a registration's secrets (key bytes) → {key id: token key}; equal key ids are refused."""
    out = {}
    for k in keys:
        kid = key_id(k)
        if kid in out:
            raise Refused("two secrets with the same key id")
        out[kid] = token_key(k)
    return out


def check_token_locally(keys, origin, audience, request, now, token):
    """§10.1 step 5: the verifier's own check of a token, before any call-back.
    keys: the registration's secrets (key bytes); request: {method, path, body_sha256}.
    Returns "valid" or the reason. The MAC is checked before the times."""
    try:
        tok = parse_token(token)
    except Refused:
        return "malformed-token"
    tkey = token_keys(keys).get(tok.key_id)
    if tok.kind == KIND_REQUEST:
        m, p, b = request["method"], request["path"], request["body_sha256"]
    else:
        m = p = b = ""
    ok = tkey is not None and hmac.compare_digest(token_mac(tkey, token_mac_input(origin, audience, m, p, b, tok.payload)), tok.mac)
    if not ok:
        if tok.audience_tag != audience_tag(audience):
            return "audience-mismatch"
        if tok.kind == KIND_REQUEST and tok.request_tag != request_tag(m, p, b):
            return "request-mismatch"
        return "forged-token"
    if now >= tok.expires_at + TOKEN_LEEWAY or now < tok.issued_at - TOKEN_LEEWAY:
        return "token-expired"
    return "valid"




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


def origin_form(target):
    """The origin-form of a request target: itself, or the path and query of an absolute-form one."""
    if target.startswith("/") or "://" not in target:
        return target
    rest = target.split("://", 1)[1]
    i = min([k for k in (rest.find("/"), rest.find("?")) if k >= 0], default=-1)
    if i < 0:
        return "/"
    return ("/" + rest[i:]) if rest[i] == "?" else rest[i:]


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

MAX_HEADER = 1024


def parse_header(v):
    """§4: "v1 <origin> <token>" → (canonical origin, token); malformed-token otherwise."""
    if len(v.encode()) > MAX_HEADER:
        raise Refused("too long")
    if not v.startswith("v1 "):
        raise Refused("version")
    parts = v[3:].split(" ")
    if len(parts) != 2:
        raise Refused("parts")
    origin = normalize_origin(parts[0])
    parse_token(parts[1])
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
    """Strict decoding (§6): UTF-8, one object, integers only, and no member name twice in any
    object, at any depth, even with equal values (names compared after their escapes are decoded).
    _members then refuses a name not spelled exactly as specified ("Version", "\u212aind")."""
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

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|[^\x00-\x7f]|\\(?:[\t -~]|[^\x00-\x7f]))*"'
_PARAMETER = re.compile(r"[ \t]*;[ \t]*(?:(" + _TOKEN + r")=(?:" + _TOKEN + "|" + _QUOTED + r"))?")


def is_json_media_type(value):
    """§8 step 2: spaces and tabs removed at both ends, an RFC 9110 media-type whose type/subtype is
    application/json in ASCII letters of any case, parameters *( OWS ";" OWS [ token "=" ( token /
    quoted-string ) ] ) (obs-text: any non-ASCII character here), no parameter name twice
    (case-insensitive), even with equal values."""
    v = value.strip(" \t")
    if not v[:16].isascii() or v[:16].lower() != "application/json":
        return False
    rest, seen = v[16:], set()
    while rest:
        m = _PARAMETER.match(rest)
        if not m or not m.group(0):
            return False
        if m.group(1) is not None:
            name = m.group(1).lower()
            if name in seen:
                return False
            seen.add(name)
        rest = rest[m.end():]
    return True


def _once(headers, name):
    """A signing header counts only when it appears exactly once (§5.1)."""
    values = [v for n, v in headers if n.lower() == name.lower()]
    return values[0] if len(values) == 1 else ""


def _first(headers, name):
    values = [v for n, v in headers if n.lower() == name.lower()]
    return values[0] if values else ""


PROBLEM_BASE = "https://github.com/domainconfirm/domainconfirm/blob/main/PROTOCOL.md#"


class Site:
    """A site's configuration (§17 step 1): its canonical origin and, per API it works with
    (in the order configured), the audience and the secrets' key bytes."""

    def __init__(self, origin, apis):
        if normalize_origin(origin) != origin:
            raise Refused("site origin not canonical")
        self.origin, self.apis, seen = origin, [], set()
        for api in apis:
            aud = api["audience"]
            if normalize_origin(aud) != aud or aud in [a for a, _ in self.apis]:
                raise Refused("audience not canonical or repeated")
            keys = parse_secrets(api["secrets"])
            token_keys(keys)  # no two equal key ids
            if seen & set(keys):
                raise Refused("a secret shared by two APIs")  # §3.5: one secret set per API
            seen |= set(keys)
            self.apis.append((aud, keys))

    @classmethod
    def from_json(cls, site):
        return cls(site["origin"], site["apis"])

    def keys_for(self, audience):
        for aud, keys in self.apis:
            if aud == audience:
                return keys
        raise Refused("no such API")


class Answer:
    def __init__(self, status, reason="", headers=None, body=b""):
        self.status, self.reason, self.headers, self.body = status, reason, headers or {}, body

    def tuple(self):
        return self.status, self.reason


_TITLES = {"method-not-allowed": "Method not allowed", "unsupported-media-type": "Unsupported media type",
           "message-too-large": "Message too large", "malformed-message": "Malformed message",
           "bad-message-id": "Confirmation request not authenticated", "bad-timestamp": "Confirmation request not authenticated",
           "bad-signature": "Confirmation request not authenticated", "wrong-origin": "Wrong origin",
           "store-unavailable": "Token store unavailable", "cross-origin-refused": "Cross-origin request refused",
           "malformed-request": "Malformed token request", "audience-not-allowed": "Audience not allowed",
           "token-refused": "Token refused", "authorize-failed": "Authorisation failed", "issue-failed": "Token not issued"}


def problem(status, reason, **extra):
    """§11: an unsigned application/problem+json answer, with Cache-Control: no-store."""
    body = go_json({"type": PROBLEM_BASE + reason, "title": _TITLES.get(reason, reason), "status": status, "reason": reason})
    headers = {"Content-Type": "application/problem+json", "Cache-Control": "no-store", "Content-Length": str(len(body))}
    headers.update(extra)
    return Answer(status, reason, headers, body)


def _auth_problem(reason):
    return problem(401, reason, **{"WWW-Authenticate": 'DomainConfirm-Signature error="%s"' % reason})


def signed_answer(keys, msg_id, now, obj, reason=""):
    """§9: a 200 JSON answer signed with direction response, the request's id and the site's clock."""
    body = go_json(obj)
    return Answer(200, reason, {
        "Content-Type": "application/json", "Cache-Control": "no-store", "Content-Length": str(len(body)),
        "Domainconfirm-Id": msg_id, "Domainconfirm-Timestamp": str(now),
        "Domainconfirm-Signature": sign(keys, "response", msg_id, now, body)}, body)


def site_handle(method, headers, body, site, store, now):
    """The confirmation handler (§8, §10.3). headers: [name, value] pairs; store: a dict
    token_sha256 → record, taken from atomically (dict.pop). Returns an Answer."""
    if method != "POST":                                                   # step 1
        return problem(405, "method-not-allowed", Allow="POST")
    if not is_json_media_type(_first(headers, "Content-Type")):             # step 2
        return problem(415, "unsupported-media-type")
    if len(body) > MAX_MESSAGE:                                            # step 3
        return problem(413, "message-too-large")
    msg_id = _once(headers, "Domainconfirm-Id")                            # step 4
    ts = _once(headers, "Domainconfirm-Timestamp")
    sig = _once(headers, "Domainconfirm-Signature")
    api = None
    for audience, keys in site.apis:  # the secrets of one API, then the next, in the order configured
        try:
            verify(keys, "request", msg_id, ts, sig, body, now)
            api = (audience, keys)
            break
        except SigError as e:
            if e.kind != "signature":  # id and timestamp do not depend on the keys
                return _auth_problem("bad-message-id" if e.kind == "message-id" else "bad-timestamp")
    if api is None:
        return _auth_problem("bad-signature")
    audience, keys = api
    try:                                                                   # step 5
        m = decode(body)
        if m.get("type") == "probe":
            check_probe(m)
        else:
            check_request(m)
    except Refused:
        return problem(400, "malformed-message")
    if m["type"] == "probe":                                               # §10.3
        if m["origin"] != site.origin:
            return problem(400, "wrong-origin")
        if m["audience"] != audience:
            return _auth_problem("bad-signature")
        return signed_answer(keys, msg_id, now, {"version": 1, "type": "probe", "challenge": m["challenge"],
                                                 "proofs": [probe_proof(k, m["challenge"]) for k in keys]})
    if m["audience"] != audience:  # API A cannot ask about, nor burn, tokens issued for API B
        return _auth_problem("bad-signature")
    record = store.pop(m["token_sha256"], None)                            # step 6
    ans = site_answer(record, m, site.origin, now)                         # step 7
    return signed_answer(keys, msg_id, now, ans, ans.get("reason", ""))


def token_handle(method, headers, body, site, audiences, ttl, authorize, now, nonce=None):
    """The token handler (§15). Returns an Answer; a 200 carries {"header", "expires_at"}."""
    if method not in ("GET", "HEAD", "OPTIONS"):
        origin, fetch_site = _first(headers, "Origin"), _first(headers, "Sec-Fetch-Site")
        if fetch_site:
            cross = fetch_site not in ("same-origin", "none")
        else:
            cross = bool(origin) and origin.partition("://")[2].split("/")[0] != _first(headers, "Host")
        if cross:
            return problem(403, "cross-origin-refused")
    if method != "POST":
        return problem(405, "method-not-allowed", Allow="POST")
    if not is_json_media_type(_first(headers, "Content-Type")):
        return problem(415, "unsupported-media-type")
    if len(body) > 4096:
        return problem(413, "message-too-large")
    try:
        m = decode(body)
        _members(m, (), ("audience", "action"))
        if not isinstance(m.get("audience", ""), str) or not isinstance(m.get("action", ""), str):
            raise Refused("types")
    except Refused:
        return problem(400, "malformed-request")
    try:
        audience = normalize_origin(m.get("audience", ""))
    except Refused:
        return problem(400, "audience-not-allowed")
    if audience not in audiences:
        return problem(400, "audience-not-allowed")
    try:
        check_action(m.get("action", ""))
    except Refused:
        return problem(400, "malformed-request")
    outcome = authorize(m["action"])
    if outcome == "refused":
        return problem(403, "token-refused")
    try:
        if outcome == "failed":
            raise Refused("hook failed")
        check_subject(outcome)
    except Refused:
        return problem(500, "authorize-failed")
    # An action token for that audience and label, MACed with the first secret the site holds for it.
    binding = {"audience": audience, "kind": "action", "action": m["action"]}
    _, _, _, token = issue_token(site.keys_for(audience)[0], site.origin, binding, now, ttl, nonce or os.urandom(16))
    body = go_json({"header": "v1 %s %s" % (site.origin, token), "expires_at": now + ttl})
    return Answer(200, "", {"Content-Type": "application/json", "Cache-Control": "no-store", "Content-Length": str(len(body))}, body)


# ---- §10.2: the verifier's judgement of the site's answer -----------------------

def verifier_outcome(status, headers, body, req_id, req, keys, audience, now):
    """§10.2: the outcome of a call-back answer: {"result": "confirmed", "subject"?},
    {"result": "rejected", "reason"} or {"result": "unverified", "reason"}."""
    def unverified(reason):
        return {"result": "unverified", "reason": reason}
    if 300 <= status < 400:
        return unverified("callback-redirect")
    if len(body) > MAX_MESSAGE:
        return unverified("answer-too-large")
    if status != 200:
        return unverified("callback-status")
    if headers.get("Domainconfirm-Id") != req_id:
        return unverified("bad-signature")
    try:
        verify(keys, "response", headers.get("Domainconfirm-Id", ""), headers.get("Domainconfirm-Timestamp", ""),
               headers.get("Domainconfirm-Signature", ""), body, now)
    except SigError as e:
        return unverified("bad-timestamp" if e.kind == "timestamp" else "bad-signature")
    try:
        ans = decode(body)
        check_response(ans)
    except Refused:
        return unverified("malformed-answer")
    if not hmac.compare_digest(ans["challenge"].encode(), req["challenge"].encode()):
        return unverified("challenge-mismatch")
    if ans["result"] == "rejected":
        return {"result": "rejected", "reason": ans["reason"] if ans["reason"] in SITE_REASONS else "token-rejected"}
    b = ans["binding"]
    if b["audience"] != audience or (b["kind"] == "request" and any(b[k] != req["request"][k] for k in ("method", "path", "body_sha256"))) \
            or ans["expires_at"] < now - TOLERANCE or ans["issued_at"] > now + TOLERANCE:
        return unverified("inconsistent-answer")
    out = {"result": "confirmed"}
    if ans.get("subject"):
        out["subject"] = ans["subject"]
    return out


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


# Every file of vectors/ and its top-level members: a file or a member this checker does not
# know is a failure, so that no vector is skipped silently.
KNOWN_FILES = {
    "origins.json": {"description", "vectors"},
    "confirm_urls.json": {"description", "default_path", "vectors"},
    "secrets.json": {"description", "vectors"},
    "tokens.json": {"description", "leeway_seconds", "derivation", "construction", "syntax", "checks"},
    "bodies.json": {"description", "vectors"},
    "messages.json": {"description", "max_bytes", "site_reasons", "vectors"},
    "paths.json": {"description", "vectors"},
    "headers.json": {"description", "max_length", "vectors"},
    "signatures.json": {"description", "tolerance_seconds", "secrets", "signing", "verification"},
    "confirmation.json": {"description", "audience", "registration", "notes", "exchanges"},
    "probes.json": {"description", "audience", "registration", "notes", "proofs", "messages", "exchanges"},
    "site_handler.json": {"description", "site", "now", "confirmation", "token_handler"},
}


def check_files(c):
    names = sorted(n for n in os.listdir(HERE) if n.endswith(".json"))
    for n in names:
        c.check(n in KNOWN_FILES, "a vector file this checker does not know: " + n)
        if n in KNOWN_FILES:
            keys = set(load(n))
            c.check(keys == KNOWN_FILES[n], "%s: members %s" % (n, sorted(keys ^ KNOWN_FILES[n])))
    for n in KNOWN_FILES:
        c.check(n in names, "missing vector file: " + n)


def check_simple(c):
    for v in load("origins.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(normalize_origin, v["input"]) and normalize_origin(v["input"]) == v["canonical"], "origin %r" % v["input"])
        else:
            c.check(refused(normalize_origin, v["input"]), "origin %r should be refused" % v["input"])
    f = load("confirm_urls.json")
    c.check(f["default_path"] == DEFAULT_CONFIRM_PATH, "confirm URLs: default_path")
    for v in f["vectors"]:
        if v["valid"]:
            c.check(not refused(confirm_url, v["origin"], v["confirm_url"]) and confirm_url(v["origin"], v["confirm_url"]) == v["url"], "confirm URL %r" % v["confirm_url"])
        else:
            c.check(refused(confirm_url, v["origin"], v["confirm_url"]), "confirm URL %r should be refused" % v["confirm_url"])
    for v in load("secrets.json")["vectors"]:
        if v["valid"]:
            c.check(not refused(parse_secret, v["secret"]) and parse_secret(v["secret"]).hex() == v["key_hex"], "secret: " + v["note"])
        else:
            c.check(refused(parse_secret, v["secret"]), "secret should be refused: " + v["note"])
    for v in load("bodies.json")["vectors"]:
        b = base64.b64decode(v["body_base64"])
        c.check(sha256_hex(b) == v["sha256"] and (v.get("body") is None or v["body"].encode() == b), "body: " + v["note"])
    for v in load("paths.json")["vectors"]:
        # path: the one spelling bound (and to send); valid: a verifier
        # accepts the target as received only in that spelling (§3.4).
        if "path" in v:
            c.check(not refused(bound_path, v["target"]) and bound_path(v["target"]) == v["path"], "path %r" % v["target"])
            c.check(v["valid"] == (v["path"] == origin_form(v["target"])), "path %r: accepted only in its one spelling" % v["target"])
        else:
            c.check(not v["valid"] and refused(bound_path, v["target"]), "path %r should be refused" % v["target"])
    f = load("headers.json")
    c.check(f["max_length"] == MAX_HEADER, "headers: max_length")
    for v in f["vectors"]:
        if v["valid"]:
            c.check(not refused(parse_header, v["header"]) and parse_header(v["header"]) == (v["origin"], v["token"]), "header: " + v["note"])
        else:
            c.check(refused(parse_header, v["header"]), "header should be refused: " + v["note"])


def _token_fields(tok):
    """The fields a tokens.json syntax vector gives for a valid token."""
    d = {"sha256": tok.sha256, "kind": KIND_NAMES[tok.kind], "key_id_hex": tok.key_id.hex(),
         "issued_at": tok.issued_at, "expires_at": tok.expires_at}
    if tok.kind == KIND_ACTION:
        d["action"] = tok.action
    return d


def _binding_request(b):
    """The request a binding was issued for (any request for an action binding)."""
    if b["kind"] == "request":
        return {k: b[k] for k in ("method", "path", "body_sha256")}
    return {"method": "GET", "path": "/", "body_sha256": sha256_hex(b"")}


def check_tokens(c):
    f = load("tokens.json")
    c.check(f["leeway_seconds"] == TOKEN_LEEWAY, "tokens: leeway_seconds")
    for v in f["derivation"]:
        key = parse_secret(v["secret"])
        c.check(token_key(key).hex() == v["token_key_hex"], "token key: " + v["note"])
        c.check(key_id(key).hex() == v["key_id_hex"], "key id: " + v["note"])
        # §3.5's spelled-out form: PRK = HMAC(32 zero bytes, key), then one HMAC block per output
        prk = hmac.new(b"\x00" * 32, key, hashlib.sha256).digest()
        c.check(hmac.new(prk, TOKEN_KEY_INFO + b"\x01", hashlib.sha256).hexdigest() == v["token_key_hex"]
                and hmac.new(prk, KEY_ID_INFO + b"\x01", hashlib.sha256).hexdigest()[:8] == v["key_id_hex"],
                "derivation as §3.5 spells it out: " + v["note"])
    for v in f["construction"]:
        name, key, b = v["note"], parse_secret(v["secret"]), v["binding"]
        try:
            payload, mac_input, mac, token = issue_token(key, v["origin"], b, v["issued_at"], v["lifetime_seconds"], bytes.fromhex(v["nonce_hex"]))
        except Refused as e:
            c.check(False, "construction refused (%s): %s" % (e, name))
            continue
        c.check(payload.hex() == v["payload_hex"], "construction payload: " + name)
        c.check(mac_input.hex() == v["mac_input_hex"], "construction MAC input: " + name)
        c.check(mac.hex() == v["mac_hex"], "construction MAC: " + name)
        c.check(token == v["token"], "construction token: " + name)
        c.check(sha256_hex(token.encode()) == v["token_sha256"], "construction token hash: " + name)
        tok = parse_token(v["token"])
        want = {"kind": b["kind"], "key_id_hex": key_id(key).hex(), "issued_at": v["issued_at"],
                "expires_at": v["issued_at"] + v["lifetime_seconds"], "sha256": v["token_sha256"]}
        if b["kind"] == "action":
            want["action"] = b["action"]
        c.check(_token_fields(tok) == want, "construction: the token parses back to its fields: " + name)
        c.check(check_token_locally([key], v["origin"], b["audience"], _binding_request(b), v["issued_at"], v["token"]) == "valid",
                "construction: the token passes the local check for its binding: " + name)
    for v in f["syntax"]:
        try:
            tok = parse_token(v["token"])
        except Refused as e:
            c.check(not v["valid"], "token should be valid (%s): %s" % (e, v["note"]))
            continue
        if not v["valid"]:
            c.check(False, "token should be refused: " + v["note"])
            continue
        want = {k: v[k] for k in ("sha256", "kind", "key_id_hex", "issued_at", "expires_at", "action") if k in v}
        c.check(_token_fields(tok) == want, "token fields %r: %s" % (_token_fields(tok), v["note"]))
    for v in f["checks"]:
        keys = parse_secrets(v["secrets"])
        got = check_token_locally(keys, v["origin"], v["audience"], v["request"], v["now"], v["token"])
        c.check(got == v["result"], "local check (got %s, want %s): %s" % (got, v["result"], v["note"]))


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
    c.check(f["tolerance_seconds"] == TOLERANCE, "signatures: tolerance_seconds")
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


def _headers_match(got, want):
    """Every header of want has exactly that value in got (names case-insensitive)."""
    low = {k.lower(): v for k, v in got.items()}
    return all(low.get(k.lower()) == v for k, v in want.items())


def check_confirmation(c):
    f = load("confirmation.json")
    reg = f["registration"]
    keys = parse_secrets(reg["secrets"])
    origin, audience = reg["origin"], f["audience"]
    c.check(normalize_origin(origin) == origin and normalize_origin(audience) == audience, "canonical origins")
    site = Site(origin, [{"audience": audience, "secrets": reg["secrets"]}])
    for x in f["exchanges"]:
        name, now = x["name"], x["now"]
        api, record = x["api_request"], x["site_record"]

        # The caller's request and the token in it.
        c.check(parse_header(api["headers"]["Domain-Confirm"]) == (origin, x["token"]), name + ": header")
        c.check(sha256_hex(x["token"].encode()) == x["token_sha256"], name + ": token hash")
        c.check(sha256_hex(api["body"].encode()) == api["body_sha256"], name + ": body digest")
        path = bound_path(api["target"])
        c.check(path == api["target"], name + ": target")
        request = {"method": api["method"], "path": path, "body_sha256": api["body_sha256"]}
        tok = parse_token(x["token"])
        c.check(tok.key_id == key_id(keys[0]), name + ": token MACed with the registration's first secret (key id)")

        # §10.1 step 5: the verifier's local check. A token whose site record binds another
        # request is refused as request-mismatch; every other passes.
        expect = "valid"
        if record is not None and record["binding"]["kind"] == "request" and _binding_request(record["binding"]) != request:
            expect = "request-mismatch"
        got = check_token_locally(keys, origin, audience, request, now, x["token"])
        c.check(got == expect, "%s: local check: got %s, want %s" % (name, got, expect))
        if record is not None:
            # The token carries what the site recorded, under a MAC that verifies for that binding.
            b = record["binding"]
            check_binding(b)
            want = {"kind": b["kind"], "key_id_hex": key_id(keys[0]).hex(), "issued_at": record["issued_at"],
                    "expires_at": record["expires_at"], "sha256": x["token_sha256"]}
            if b["kind"] == "action":
                want["action"] = b["action"]
            c.check(_token_fields(tok) == want, name + ": token fields are the site record's")
            c.check(check_token_locally(keys, origin, b["audience"], _binding_request(b), now, x["token"]) == "valid",
                    name + ": the token is valid for its recorded binding")

        # The verifier's confirmation request, byte for byte.
        cr = x["confirmation_request"]
        h = cr["headers"]
        body = cr["body"].encode()
        c.check(cr["url"] == confirm_url(origin, reg["confirm_url"]), name + ": URL")
        c.check(cr["method"] == "POST", name + ": method")
        req = decode(body)
        check_request(req)
        want_req = {"version": 1, "type": "confirm", "origin": origin, "audience": audience,
                    "token_sha256": x["token_sha256"], "challenge": req["challenge"], "request": request}
        c.check(body == go_json(want_req), name + ": request body bytes")
        want_h = {"Accept": "application/json", "Content-Length": str(len(body)), "Content-Type": "application/json",
                  "Domainconfirm-Id": h["Domainconfirm-Id"], "Domainconfirm-Timestamp": str(now),
                  "Domainconfirm-Signature": sign(keys, "request", h["Domainconfirm-Id"], now, body),
                  "User-Agent": "domainconfirm-verify/1"}
        c.check(h == want_h, name + ": request headers (signature re-made with every registered secret)")
        c.check(len(body) <= MAX_MESSAGE, name + ": request size")
        c.check(not refused(verify, keys, "request", h["Domainconfirm-Id"], h["Domainconfirm-Timestamp"], h["Domainconfirm-Signature"], body, now),
                name + ": request verifies")
        c.check(refused(verify, keys, "response", h["Domainconfirm-Id"], h["Domainconfirm-Timestamp"], h["Domainconfirm-Signature"], body, now),
                name + ": request not a response")

        # The site: its handler, with the record in its store and its clock at now + 1.
        store = {x["token_sha256"]: record} if record is not None else {}
        ans = site_handle("POST", list(h.items()), body, site, store, now + 1)
        cs = x["confirmation_response"]
        rbody = cs["body"].encode()
        c.check(ans.status == cs["status"], name + ": the site's status")
        c.check(ans.headers == cs["headers"], name + ": the site's answer headers %r" % ans.headers)
        c.check(ans.body == rbody, name + ": the site's answer bytes")
        c.check(not store, name + ": the token is consumed")
        c.check(site_handle("POST", list(h.items()), body, site, store, now + 1).reason == "unknown-token",
                name + ": a second confirmation finds nothing")

        # The verifier: the answer, as §10.2 judges it.
        rh = cs["headers"]
        c.check(not refused(verify, keys, "response", rh["Domainconfirm-Id"], rh["Domainconfirm-Timestamp"], rh["Domainconfirm-Signature"], rbody, now),
                name + ": response verifies")
        c.check(refused(verify, keys, "request", rh["Domainconfirm-Id"], rh["Domainconfirm-Timestamp"], rh["Domainconfirm-Signature"], rbody, now),
                name + ": response not a request")
        a = decode(rbody)
        check_response(a)
        c.check(a == site_answer(record, req, origin, now + 1), name + ": the site's decision")
        out = verifier_outcome(cs["status"], rh, rbody, h["Domainconfirm-Id"], req, keys, audience, now)
        c.check(out == x["outcome"], "%s: outcome %r" % (name, out))


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
        c.check(probe["origin"] == reg["origin"] and probe["audience"] == f["audience"], name + ": probe origin and audience")
        site = Site(x["site_origin"], [{"audience": f["audience"], "secrets": x["site_secrets"]}])
        ans = site_handle("POST", list(h.items()), body, site, {}, now + 1)
        ps = x["probe_response"]
        c.check(ans.tuple() == (ps["status"], x.get("reason", "")), name + ": the site's status and reason %r" % (ans.tuple(),))
        if ps["status"] != 200:
            c.check(_headers_match(ans.headers, ps["headers"]), name + ": problem headers %r" % ans.headers)
            c.check(x["secrets_held"] is None, name + ": no secrets held")
            continue
        c.check(ans.headers == ps["headers"], name + ": answer headers %r" % ans.headers)
        c.check(ans.body == ps["body"].encode(), name + ": answer bytes")
        rh, rbody = ps["headers"], ps["body"].encode()
        c.check(not refused(verify, keys + [k for k in parse_secrets(x["site_secrets"]) if k not in keys], "response",
                            rh["Domainconfirm-Id"], rh["Domainconfirm-Timestamp"], rh["Domainconfirm-Signature"], rbody, now),
                name + ": answer verifies")
        a = decode(rbody)
        check_probe_response(a)
        c.check(a["challenge"] == probe["challenge"], name + ": challenge echoed")
        held = [i + 1 for i, k in enumerate(keys) if probe_proof(k, probe["challenge"]) in a["proofs"]]
        c.check(held == x["secrets_held"], name + ": secrets held")


def check_site_handler(c):
    f = load("site_handler.json")
    site = Site.from_json(f["site"])
    now = f["now"]
    c.check(len(site.apis) >= 2, "site_handler: a site with several APIs")
    for v in f["confirmation"]:
        ans = site_handle(v["method"], v["headers"], v["body"].encode(), site, {}, now)
        c.check(ans.tuple() == (v["status"], v["reason"]), "confirmation handler: %s: got %r" % (v["note"], ans.tuple()))
        c.check(_headers_match(ans.headers, v["response_headers"]), "confirmation handler headers: %s: got %r" % (v["note"], ans.headers))
    th = f["token_handler"]
    site_audiences = [a for a, _ in site.apis]
    c.check(all(a in site_audiences for a in th["audiences"]), "token handler: every audience is one of the site's APIs")

    def authorize(action):  # as th["authorize"] describes it
        return {"refuse": "refused", "fail": "failed", "bad-subject": "\x07"}.get(action, "user-17")

    for v in th["vectors"]:
        ans = token_handle(v["method"], v["headers"], v["body"].encode(), site, th["audiences"], th["ttl_seconds"], authorize, now)
        c.check(ans.tuple() == (v["status"], v["reason"]), "token handler: %s: got %r" % (v["note"], ans.tuple()))
        c.check(_headers_match(ans.headers, v["response_headers"]), "token handler headers: %s: got %r" % (v["note"], ans.headers))
        if ans.status != 200:
            continue
        # The answer's token: an action token for the audience and label asked, issued now for the
        # TTL, MACed with the first secret of that audience; it passes the API's local check.
        asked = decode(v["body"].encode())
        aud = normalize_origin(asked["audience"])
        a = decode(ans.body)
        try:
            o, t = parse_header(a["header"])
            tok = parse_token(t)
            keys = site.keys_for(aud)
            ok = (o == site.origin and a["expires_at"] == now + th["ttl_seconds"] and tok.kind == KIND_ACTION
                  and tok.action == asked["action"] and tok.issued_at == now and tok.expires_at == now + th["ttl_seconds"]
                  and tok.key_id == key_id(keys[0])
                  and check_token_locally(keys, site.origin, aud, {"method": "GET", "path": "/", "body_sha256": sha256_hex(b"")}, now, t) == "valid")
        except Refused:
            ok = False
        c.check(ok, "token handler answer: " + v["note"])


def main():
    total = Counter()
    for name, fn in (("vector files", check_files),
                     ("origins, confirm URLs, secrets, bodies, paths, headers", check_simple),
                     ("tokens", check_tokens), ("messages", check_messages), ("signatures", check_signatures),
                     ("confirmation", check_confirmation), ("probes", check_probes), ("site handlers", check_site_handler)):
        c = Counter()
        try:
            fn(c)
        except Exception as e:  # a vector this implementation cannot even process is a failure
            c.failed += 1
            print("  FAIL: %s: %s: %s" % (name, type(e).__name__, e))
        print("%-66s %4d passed, %d failed" % (name, c.passed, c.failed))
        total.passed += c.passed
        total.failed += c.failed
    print("%d passed, %d failed" % (total.passed, total.failed))
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
