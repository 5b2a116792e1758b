package wire

import (
	"encoding/binary"
)

// A site's record of an issued token, in the binary form the Go site
// writes (PROTOCOL.md leaves the record to each site):
//
//	0x01                       the form (a JSON record starts with '{')
//	issued_at, expires_at      8 bytes each, big-endian
//	origin, audience, kind, method, path, body_sha256, action, subject
//	                           each a uvarint length and that many bytes
//
// Decoding it is a copy and a few length reads, where the JSON form took a
// UTF-8 check and a scan (about a quarter of the site's work to judge a
// token besides the signatures), and it is a third shorter, which a site
// holding many outstanding tokens keeps in memory or in Redis.
const recordForm = 0x01

// recordStrings is how many strings a record holds.
const recordStrings = 8

// AppendRecord appends the binary record of a token DecodeRecord reads.
func AppendRecord(b []byte, origin string, bd *Binding, subject string, issued, expires int64) []byte {
	b = append(b, recordForm)
	b = binary.BigEndian.AppendUint64(b, uint64(issued))
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	for _, s := range [recordStrings]string{origin, bd.Audience, bd.Kind, bd.Method, bd.Path, bd.BodySHA256, bd.Action, subject} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// IsBinaryRecord reports whether raw is in the binary form (not JSON).
func IsBinaryRecord(raw []byte) bool { return len(raw) > 0 && raw[0] == recordForm }

// DecodeRecord decodes a record AppendRecord wrote. ok is false for
// anything else: another form, a truncated or overlong record, a length
// not in its shortest form, trailing bytes. The strings share one copy of raw.
func DecodeRecord(raw []byte) (origin string, bd Binding, subject string, issued, expires int64, ok bool) {
	if !IsBinaryRecord(raw) {
		return "", Binding{}, "", 0, 0, false
	}
	// The one copy: raw may be a buffer the caller reuses.
	return DecodeRecordString(string(raw))
}

// DecodeRecordString is DecodeRecord of a record held as a string: the
// strings it returns are parts of src, not copies.
func DecodeRecordString(src string) (origin string, bd Binding, subject string, issued, expires int64, ok bool) {
	const head = 1 + 8 + 8
	if len(src) < head+recordStrings || src[0] != recordForm {
		return "", Binding{}, "", 0, 0, false
	}
	// []byte of a few bytes of src that does not escape: a copy on the
	// stack, no allocation.
	issued = int64(binary.BigEndian.Uint64([]byte(src[1:9])))
	expires = int64(binary.BigEndian.Uint64([]byte(src[9:17])))
	var strs [recordStrings]string
	i := head
	for k := range strs {
		n, w := binary.Uvarint([]byte(src[i:min(i+binary.MaxVarintLen64, len(src))]))
		// Only the shortest form of each length: one record, one
		// spelling.
		if w <= 0 || w > 1 && src[i+w-1] == 0 || n > uint64(len(src)-i-w) {
			return "", Binding{}, "", 0, 0, false
		}
		i += w
		strs[k] = src[i : i+int(n)]
		i += int(n)
	}
	if i != len(src) {
		return "", Binding{}, "", 0, 0, false
	}
	bd = Binding{Audience: strs[1], Kind: strs[2], Method: strs[3], Path: strs[4], BodySHA256: strs[5], Action: strs[6]}
	return strs[0], bd, strs[7], issued, expires, true
}
