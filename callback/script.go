package callback

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// ScriptPath is the suggested path to mount [ScriptHandler] at, on the site
// whose pages use it:
//
//	mux.Handle("GET "+callback.ScriptPath, callback.ScriptHandler())
const ScriptPath = "/domainconfirm.js"

// script is the client script, shipped as written: no build step.
//
//go:embed script/domainconfirm.js
var script []byte

// scriptETag is a strong validator of script: its SHA-256, truncated.
var scriptETag = func() string {
	sum := sha256.Sum256(script)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// ScriptHandler serves domainconfirm.js, a dependency-free client script (under
// 3 KB) for the site's pages. It defines a global domainconfirm object:
//
//	<script src="/domainconfirm.js"></script>
//	<script>
//	  domainconfirm.configure({tokenURL: "/domainconfirm/token"}); // the default
//	  const resp = await domainconfirm.fetch("https://api.example/v1/report",
//	    {method: "POST", body, action: "report"});
//	</script>
//
// domainconfirm.fetch POSTs {"audience": the API's origin, "action": ...} to
// the site's [Site.TokenHandler] (same-origin, with the site's cookies), then
// calls the API with window.fetch and the Domain-Confirm header (mode "cors",
// credentials "omit" unless init says otherwise). The action label is
// init.action or, if absent, the method and path ("POST:/v1/report"),
// characters outside the action alphabet replaced by "_", cut to 64. A refused
// token, or an API answer that is not 2xx and is application/problem+json,
// throws a domainconfirm.Error whose status, reason, detail and problem say
// why (for example reason "token-replayed"); any other answer is returned as
// the Response. The script never logs the token.
//
// Answers carry Cache-Control: no-cache with a strong ETag, so browsers
// revalidate (a cheap 304) and a site upgrading the library serves the new
// script at once, never a stale copy next to a newer token handler. Only GET
// and HEAD are allowed.
func ScriptHandler() http.Handler {
	return http.HandlerFunc(serveScript)
}

func serveScript(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		wire.WriteProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "the script is fetched with GET")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", scriptETag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(script))
}
