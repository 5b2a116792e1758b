package wire

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Hand-written JSON for the messages on the call-back path, which
// encoding/json's reflection made the largest cost of a cold verification.
//
// The encoders write exactly what encoding/json.Marshal writes for the same
// value (the tests compare them byte for byte). The decoders read the plain
// form senders write and give up, returning ok == false, on anything else
// (escapes, unknown or differently-cased members, duplicates, null, numbers
// that are not plain non-negative integers): the caller then decodes with
// Decode, so the accepted language and the result are exactly Decode's (a
// fuzz test checks both agree). Only names spelled exactly as specified,
// each once per object, get through either path (PROTOCOL.md §6): the fast
// path compares names byte for byte, and Decode checks them after
// encoding/json with checkNames below.

const hexDigits = "0123456789abcdef"

// plainJSON marks the ASCII bytes a JSON string carries as they are, as
// encoding/json writes them: not a control character, quote, backslash,
// or one of the HTML characters it escapes.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// appendString appends s as a JSON string, escaping as encoding/json does
// (HTML-safe, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainJSON[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendMember(b []byte, name string, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// AppendJSON appends m as encoding/json.Marshal would write it.
func (m *ConfirmRequest) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendMember(b, "version", false)
	b = strconv.AppendInt(b, int64(m.Version), 10)
	b = appendMember(b, "type", true)
	b = appendString(b, m.Type)
	b = appendMember(b, "origin", true)
	b = appendString(b, m.Origin)
	b = appendMember(b, "audience", true)
	b = appendString(b, m.Audience)
	b = appendMember(b, "token_sha256", true)
	b = appendString(b, m.TokenSHA256)
	b = appendMember(b, "challenge", true)
	b = appendString(b, m.Challenge)
	b = appendMember(b, "request", true)
	b = append(b, '{')
	b = appendMember(b, "method", false)
	b = appendString(b, m.Request.Method)
	b = appendMember(b, "path", true)
	b = appendString(b, m.Request.Path)
	b = appendMember(b, "body_sha256", true)
	b = appendString(b, m.Request.BodySHA256)
	return append(b, '}', '}')
}

// AppendJSON appends b as encoding/json.Marshal would write it.
func (bd *Binding) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendMember(b, "audience", false)
	b = appendString(b, bd.Audience)
	b = appendMember(b, "kind", true)
	b = appendString(b, bd.Kind)
	for _, f := range [...]struct{ name, v string }{
		{"method", bd.Method}, {"path", bd.Path}, {"body_sha256", bd.BodySHA256}, {"action", bd.Action},
	} {
		if f.v != "" {
			b = appendMember(b, f.name, true)
			b = appendString(b, f.v)
		}
	}
	return append(b, '}')
}

// AppendJSON appends m as encoding/json.Marshal would write it.
func (m *ConfirmResponse) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendMember(b, "version", false)
	b = strconv.AppendInt(b, int64(m.Version), 10)
	b = appendMember(b, "type", true)
	b = appendString(b, m.Type)
	b = appendMember(b, "challenge", true)
	b = appendString(b, m.Challenge)
	b = appendMember(b, "result", true)
	b = appendString(b, m.Result)
	if m.Reason != "" {
		b = appendMember(b, "reason", true)
		b = appendString(b, m.Reason)
	}
	if m.Subject != "" {
		b = appendMember(b, "subject", true)
		b = appendString(b, m.Subject)
	}
	if m.Binding != nil {
		b = appendMember(b, "binding", true)
		b = m.Binding.AppendJSON(b)
	}
	if m.IssuedAt != 0 {
		b = appendMember(b, "issued_at", true)
		b = strconv.AppendInt(b, m.IssuedAt, 10)
	}
	if m.ExpiresAt != 0 {
		b = appendMember(b, "expires_at", true)
		b = strconv.AppendInt(b, m.ExpiresAt, 10)
	}
	return append(b, '}')
}

// scanner reads the plain JSON the encoders above write.
type scanner struct {
	b   []byte
	src string // b, copied once: strings read are substrings of it, not copies each
	i   int
}

// newScanner returns a scanner of body. The strings it reads share one copy
// of body, made here (one allocation per message instead of one per string).
func newScanner(body []byte) scanner { return scanner{b: body, src: string(body)} }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (s *scanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	b := s.b
	i := s.i
	for i < len(b) && !strStop[b[i]] {
		i++
	}
	s.i = i
	if i == len(b) || b[i] != '"' { // an escape or a control character
		return "", false
	}
	s.i++
	return s.src[start:i], true
}

// strStop marks the bytes that end the plain run of a string: the closing
// quote, an escape (refused) and the control characters (refused).
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// int reads a non-negative integer without leading zeros, fraction or
// exponent, that fits in 52 bits (exact in any JSON implementation).
func (s *scanner) int() (int64, bool) {
	s.ws()
	start := s.i
	var n int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
		if s.i-start > 15 {
			return 0, false
		}
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return n, true
}

// object reads an object, calling member for each name; a name seen twice
// or unknown to member stops the scan.
func (s *scanner) object(member func(name string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	var seen [16]string
	n := 0
	for {
		name, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		for _, prev := range seen[:n] {
			if prev == name {
				return false
			}
		}
		if n == len(seen) {
			return false
		}
		seen[n] = name
		n++
		if !member(name) {
			return false
		}
		if s.byte(',') {
			continue
		}
		return s.byte('}')
	}
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// DecodeConfirmRequest decodes a confirmation request exactly as Decode
// would, fast for the plain form.
func DecodeConfirmRequest(body []byte) (ConfirmRequest, error) {
	var m ConfirmRequest
	if utf8.Valid(body) {
		s := newScanner(body)
		ok := s.object(func(name string) (ok bool) {
			var n int64
			switch name {
			case "version":
				n, ok = s.int()
				m.Version = int(n)
			case "type":
				m.Type, ok = s.str()
			case "origin":
				m.Origin, ok = s.str()
			case "audience":
				m.Audience, ok = s.str()
			case "token_sha256":
				m.TokenSHA256, ok = s.str()
			case "challenge":
				m.Challenge, ok = s.str()
			case "request":
				ok = s.object(func(name string) (ok bool) {
					switch name {
					case "method":
						m.Request.Method, ok = s.str()
					case "path":
						m.Request.Path, ok = s.str()
					case "body_sha256":
						m.Request.BodySHA256, ok = s.str()
					}
					return ok
				})
			}
			return ok
		}) && s.end()
		if ok {
			return m, nil
		}
	}
	// The slow path decodes into a variable of its own: decoding into m
	// would move it to the heap on the fast path too.
	var other ConfirmRequest
	err := Decode(body, &other)
	return other, err
}

// DecodeBinding decodes a binding object exactly as Decode would, fast for
// the plain form.
func (s *scanner) binding(bd *Binding) bool {
	return s.object(func(name string) (ok bool) {
		switch name {
		case "audience":
			bd.Audience, ok = s.str()
		case "kind":
			bd.Kind, ok = s.str()
		case "method":
			bd.Method, ok = s.str()
		case "path":
			bd.Path, ok = s.str()
		case "body_sha256":
			bd.BodySHA256, ok = s.str()
		case "action":
			bd.Action, ok = s.str()
		}
		return ok
	})
}

// DecodeConfirmResponse decodes a confirmation response exactly as Decode
// would, fast for the plain form.
func DecodeConfirmResponse(body []byte) (ConfirmResponse, error) {
	var m ConfirmResponse
	if utf8.Valid(body) {
		var bd Binding
		s := newScanner(body)
		ok := s.object(func(name string) (ok bool) {
			var n int64
			switch name {
			case "version":
				n, ok = s.int()
				m.Version = int(n)
			case "type":
				m.Type, ok = s.str()
			case "challenge":
				m.Challenge, ok = s.str()
			case "result":
				m.Result, ok = s.str()
			case "reason":
				m.Reason, ok = s.str()
			case "subject":
				m.Subject, ok = s.str()
			case "binding":
				ok = s.binding(&bd)
				m.Binding = &bd
			case "issued_at":
				m.IssuedAt, ok = s.int()
			case "expires_at":
				m.ExpiresAt, ok = s.int()
			}
			return ok
		}) && s.end()
		if ok {
			return m, nil
		}
	}
	// The slow path decodes into a variable of its own: decoding into m
	// would move it to the heap on the fast path too.
	var other ConfirmResponse
	err := Decode(body, &other)
	return other, err
}

// DecodeBindingRecord decodes {"o":..,"b":{binding},"s":..,"i":..,"e":..},
// the record a site keeps for an issued token, fast for the plain form; ok
// is false when the fast path could not read it (use encoding/json then).
func DecodeBindingRecord(body []byte) (origin string, bd Binding, subject string, issued, expires int64, ok bool) {
	if !utf8.Valid(body) {
		return "", Binding{}, "", 0, 0, false
	}
	s := newScanner(body)
	ok = s.object(func(name string) (ok bool) {
		switch name {
		case "o":
			origin, ok = s.str()
		case "b":
			ok = s.binding(&bd)
		case "s":
			subject, ok = s.str()
		case "i":
			issued, ok = s.int()
		case "e":
			expires, ok = s.int()
		}
		return ok
	}) && s.end()
	return origin, bd, subject, issued, expires, ok
}

// AppendBindingRecord appends the record DecodeBindingRecord reads, as
// encoding/json would write the callback package's record type.
func AppendBindingRecord(b []byte, origin string, bd *Binding, subject string, issued, expires int64) []byte {
	b = append(b, '{')
	b = appendMember(b, "o", false)
	b = appendString(b, origin)
	b = appendMember(b, "b", true)
	b = bd.AppendJSON(b)
	if subject != "" {
		b = appendMember(b, "s", true)
		b = appendString(b, subject)
	}
	b = appendMember(b, "i", true)
	b = strconv.AppendInt(b, issued, 10)
	b = appendMember(b, "e", true)
	b = strconv.AppendInt(b, expires, 10)
	return append(b, '}')
}

// memberSchema is what Decode's name check knows of a Go type: for a
// struct, the member names encoding/json reads into it, spelled exactly as
// in the json tags, and the schema of each member's value.
type memberSchema struct {
	kind   schemaKind
	names  []string        // schemaStruct: the member names
	fields []*memberSchema // schemaStruct: the schema of each
	elem   *memberSchema   // schemaList, schemaMap
}

type schemaKind uint8

const (
	schemaAny    schemaKind = iota // any value; objects in it are checked for duplicates
	schemaStruct                   // an object with exactly these names
	schemaMap                      // an object with any names, each once
	schemaList                     // an array
)

var (
	anySchema   = &memberSchema{}
	schemaCache sync.Map // reflect.Type → *memberSchema
	unmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarsh = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func schemaOf(t reflect.Type) *memberSchema {
	if s, ok := schemaCache.Load(t); ok {
		return s.(*memberSchema)
	}
	s := buildSchema(t, map[reflect.Type]*memberSchema{})
	schemaCache.Store(t, s)
	return s
}

func buildSchema(t reflect.Type, building map[reflect.Type]*memberSchema) *memberSchema {
	if t == nil {
		return anySchema
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s := building[t]; s != nil {
		return s
	}
	s := &memberSchema{}
	building[t] = s
	if reflect.PointerTo(t).Implements(unmarshaler) || reflect.PointerTo(t).Implements(textUnmarsh) {
		return s // decodes itself: duplicates only
	}
	switch t.Kind() {
	case reflect.Struct:
		s.kind = schemaStruct
		addFields(s, t, building)
	case reflect.Map:
		s.kind, s.elem = schemaMap, buildSchema(t.Elem(), building)
	case reflect.Slice, reflect.Array:
		s.kind, s.elem = schemaList, buildSchema(t.Elem(), building)
	}
	return s
}

// addFields adds the json members of struct t to s: its own fields first,
// then those of untagged embedded structs (an approximation of
// encoding/json's rules, which the message types, embedding nothing, do not
// need).
func addFields(s *memberSchema, t reflect.Type, building map[reflect.Type]*memberSchema) {
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if ft := f.Type; f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !slices.Contains(s.names, name) {
			s.names = append(s.names, name)
			s.fields = append(s.fields, buildSchema(f.Type, building))
		}
	}
	for _, e := range embedded {
		addFields(s, e, building)
	}
}

// index is the index of the member named name, or -1. (The message types
// have at most 9 members: a linear search beats a map.)
func (sc *memberSchema) index(name []byte) int {
	for i, n := range sc.names {
		if n == string(name) {
			return i
		}
	}
	return -1
}

var errSyntax = fmt.Errorf("%w: not JSON", ErrMessage)

// checkNames walks the JSON value at s.i, which encoding/json has already
// decoded into a value of schema sc's type, and refuses a member name that
// is not spelled exactly as specified or that appears twice in one object
// (names compared after their escapes are decoded).
func (s *scanner) checkNames(sc *memberSchema) error {
	s.ws()
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		if s.byte('}') {
			return nil
		}
		var seen uint64      // schemaStruct with at most 64 fields
		var seenBig []bool   // schemaStruct with more
		var seenAny []string // other objects
		if sc.kind == schemaStruct && len(sc.fields) > 64 {
			seenBig = make([]bool, len(sc.fields))
		}
		for {
			s.ws()
			quoted, escaped, ok := s.rawString()
			if !ok || !s.byte(':') {
				return errSyntax
			}
			raw := quoted[1 : len(quoted)-1]
			if escaped {
				var name string
				if json.Unmarshal(quoted, &name) != nil {
					return errSyntax
				}
				raw = []byte(name)
			}
			child := anySchema
			if sc.kind == schemaStruct {
				i := sc.index(raw)
				if i < 0 {
					return fmt.Errorf("%w: member %q is not spelled as specified (names are case-sensitive)", ErrMessage, raw)
				}
				var twice bool
				if seenBig != nil {
					twice, seenBig[i] = seenBig[i], true
				} else {
					twice, seen = seen&(1<<i) != 0, seen|1<<i
				}
				if twice {
					return fmt.Errorf("%w: duplicate member %q", ErrMessage, raw)
				}
				child = sc.fields[i]
			} else {
				name := string(raw)
				for _, prev := range seenAny {
					if prev == name {
						return fmt.Errorf("%w: duplicate member %q", ErrMessage, name)
					}
				}
				seenAny = append(seenAny, name)
				if sc.kind == schemaMap {
					child = sc.elem
				}
			}
			if err := s.checkNames(child); err != nil {
				return err
			}
			if s.byte(',') {
				continue
			}
			if s.byte('}') {
				return nil
			}
			return errSyntax
		}
	case '[':
		s.i++
		if s.byte(']') {
			return nil
		}
		child := anySchema
		if sc.kind == schemaList {
			child = sc.elem
		}
		for {
			if err := s.checkNames(child); err != nil {
				return err
			}
			if s.byte(',') {
				continue
			}
			if s.byte(']') {
				return nil
			}
			return errSyntax
		}
	case '"':
		if _, _, ok := s.rawString(); !ok {
			return errSyntax
		}
	default: // a number, true, false or null
		start := s.i
	literal:
		for ; s.i < len(s.b); s.i++ {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				break literal
			}
		}
		if s.i == start {
			return errSyntax
		}
	}
	return nil
}

// rawString reads the string at s.i, quotes included, and whether it has
// escapes.
func (s *scanner) rawString() (raw []byte, escaped, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	b, start := s.b, s.i
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '"':
			s.i = i + 1
			return b[start:s.i], escaped, true
		case '\\':
			escaped = true
			i++
		}
	}
	return nil, false, false
}
