package wire

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemTypeBase prefixes the stable problem type of every reason; the
// fragment is the reason, documented in PROTOCOL.md.
const ProblemTypeBase = "https://github.com/domainconfirm/domainconfirm/blob/main/PROTOCOL.md#"

// Problem is an RFC 9457 problem details body, with the reason as an
// extension member.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason"`
}

// WriteProblem writes an application/problem+json response. The detail must
// never contain a token or a secret.
func WriteProblem(w http.ResponseWriter, status int, reason, title, detail string) {
	body, _ := json.Marshal(Problem{
		Type:   ProblemTypeBase + reason,
		Title:  title,
		Status: status,
		Detail: detail,
		Reason: reason,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
