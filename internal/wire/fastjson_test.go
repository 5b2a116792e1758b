package wire_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// The encoders must write exactly what encoding/json writes.
func FuzzAppendJSONMatchesEncodingJSON(f *testing.F) {
	f.Add("https://shop.example", "/v1/orders?id=7", "user-17", "report", int64(1767268800), true)
	f.Add("x<y>&\"\\\u2028\u2029\x01\x7f", "\xff\xfe", "é日本\t\n\r\b\f", "", int64(0), false)
	f.Fuzz(func(t *testing.T, a, b, c, d string, n int64, confirmed bool) {
		req := wire.ConfirmRequest{Version: int(n % 100), Type: a, Origin: b, Audience: c, TokenSHA256: d, Challenge: a + b,
			Request: wire.RequestInfo{Method: c, Path: b, BodySHA256: d}}
		want, _ := json.Marshal(req)
		if got := req.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("ConfirmRequest:\n got %s\nwant %s", got, want)
		}
		resp := wire.ConfirmResponse{Version: 1, Type: a, Challenge: b, Result: c, Reason: d, Subject: a, IssuedAt: n, ExpiresAt: -n}
		if confirmed {
			resp.Binding = &wire.Binding{Audience: a, Kind: b, Method: c, Path: d, BodySHA256: a, Action: b}
		}
		want, _ = json.Marshal(resp)
		if got := resp.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("ConfirmResponse:\n got %s\nwant %s", got, want)
		}
		rec := struct {
			Origin    string       `json:"o"`
			Binding   wire.Binding `json:"b"`
			Subject   string       `json:"s,omitempty"`
			IssuedAt  int64        `json:"i"`
			ExpiresAt int64        `json:"e"`
		}{a, wire.Binding{Audience: b, Kind: c, Action: d}, d, n, n + 60}
		want, _ = json.Marshal(rec)
		if got := wire.AppendBindingRecord(nil, rec.Origin, &rec.Binding, rec.Subject, rec.IssuedAt, rec.ExpiresAt); string(got) != string(want) {
			t.Fatalf("record:\n got %s\nwant %s", got, want)
		}
	})
}

// The fast decoders must accept exactly what Decode accepts, with the same
// result.
func FuzzFastDecodeMatchesDecode(f *testing.F) {
	req := wire.ConfirmRequest{Version: 1, Type: "confirm", Origin: "https://shop.example", Audience: "https://api.example",
		TokenSHA256: wire.TokenHash("dct_x"), Challenge: wire.NewChallenge(),
		Request: wire.RequestInfo{Method: "POST", Path: "/v1/orders?id=7", BodySHA256: wire.EmptyBodySHA256}}
	f.Add(req.AppendJSON(nil))
	resp := wire.ConfirmResponse{Version: 1, Type: "confirm", Challenge: req.Challenge, Result: "confirmed", Subject: "user-17",
		Binding: &wire.Binding{Audience: req.Audience, Kind: "action", Action: "report"}, IssuedAt: 1767268800, ExpiresAt: 1767268860}
	f.Add(resp.AppendJSON(nil))
	for _, s := range []string{`{}`, `null`, `{"version":1,"version":1}`, `{"Version":1}`, `{"version":01}`, `{"version":-1}`,
		`{"version":1.0}`, `{"type":"a\u0062"}`, `{"binding":null}`, `{"binding":{}}`, ` {"version" : 1 } `, `{"version":1}x`,
		`{"request":{"method":"GET","method":"POST"}}`, `{"issued_at":99999999999999999999}`, `{"subject":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var slowReq wire.ConfirmRequest
		slowErr := wire.Decode(body, &slowReq)
		fastReq, fastErr := wire.DecodeConfirmRequest(body)
		if (slowErr == nil) != (fastErr == nil) || (slowErr == nil && !reflect.DeepEqual(slowReq, fastReq)) {
			t.Fatalf("ConfirmRequest %q: Decode %+v, %v; fast %+v, %v", body, slowReq, slowErr, fastReq, fastErr)
		}
		var slowResp wire.ConfirmResponse
		slowErr = wire.Decode(body, &slowResp)
		fastResp, fastErr := wire.DecodeConfirmResponse(body)
		if (slowErr == nil) != (fastErr == nil) || (slowErr == nil && !reflect.DeepEqual(slowResp, fastResp)) {
			t.Fatalf("ConfirmResponse %q: Decode %+v, %v; fast %+v, %v", body, slowResp, slowErr, fastResp, fastErr)
		}
	})
}
