package callback_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
)

// getScript fetches the script from ScriptHandler.
func getScript(t *testing.T) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	callback.ScriptHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, callback.ScriptPath, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.Bytes()
}

func TestScriptHandlerServesEmbeddedFile(t *testing.T) {
	onDisk, err := os.ReadFile(filepath.Join("script", "domainconfirm.js"))
	require.NoError(t, err)

	rec := httptest.NewRecorder()
	callback.ScriptHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, callback.ScriptPath, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, onDisk, rec.Body.Bytes(), "the handler serves the embedded file as written")
	h := rec.Header()
	require.Equal(t, "text/javascript; charset=utf-8", h.Get("Content-Type"))
	require.Equal(t, "no-cache", h.Get("Cache-Control"))
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	etag := h.Get("ETag")
	require.Regexp(t, `^"[0-9a-f]{32}"$`, etag)

	// A revalidation with the ETag is a 304 without a body.
	req := httptest.NewRequest(http.MethodGet, callback.ScriptPath, nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	callback.ScriptHandler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotModified, rec.Code)
	require.Empty(t, rec.Body.Bytes())

	// HEAD has the headers and no body.
	rec = httptest.NewRecorder()
	callback.ScriptHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, callback.ScriptPath, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Empty(t, rec.Body.Bytes())

	// Anything else is refused.
	rec = httptest.NewRecorder()
	callback.ScriptHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, callback.ScriptPath, strings.NewReader("x")))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
}

func TestScriptIsSmallAndReadable(t *testing.T) {
	src := getScript(t)
	require.Less(t, len(src), 3072, "the script must stay under 3 KB unminified")
	s := string(src)
	for _, artefact := range []string{
		"sourceMappingURL", "__webpack", "__esModule", "require(", "import ", "export ",
		"\r", "\t", "console.",
	} {
		require.NotContains(t, s, artefact, "build artefact, module syntax or logging in the script")
	}
	for i, line := range strings.Split(s, "\n") {
		require.LessOrEqual(t, len(line), 80, "line %d is too long for hand-written code", i+1)
	}
	require.True(t, strings.HasPrefix(s, "// domainconfirm.js"), "the script starts with its comment")
}

// scriptHarness runs the script under node with a stubbed fetch that records
// every call and answers from a queue, and prints one JSON result per case.
const scriptHarness = `"use strict";
const fs = require("fs"), vm = require("vm");
const logged = [];
for (const k of ["log", "info", "warn", "error", "debug"]) {
  console[k] = (...a) => logged.push(a.map(String).join(" "));
}
vm.runInThisContext(fs.readFileSync(process.argv[2], "utf8"), {filename: "domainconfirm.js"});
const dc = globalThis.domainconfirm;
const TOKEN = "v1 https://shop.example dct_SECRETSECRETSECRETSECRETSECRETSECRETSEC";
let calls = [], replies = [];
globalThis.fetch = async (url, init) => {
  init = init || {};
  const headers = {};
  new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
  calls.push({url: String(url), method: init.method || "GET", mode: init.mode,
    credentials: init.credentials, headers, body: typeof init.body === "string" ? init.body : null});
  if (!replies.length) throw new TypeError("unexpected fetch");
  return replies.shift();
};
const reply = (status, ctype, body) =>
  new Response(typeof body === "string" ? body : JSON.stringify(body), {status, headers: {"Content-Type": ctype}});
const tokenOK = () => reply(200, "application/json", {header: TOKEN, expires_at: 1767225600});

async function run(name, rs, fn) {
  calls = []; replies = rs;
  const out = {name};
  try {
    const r = await fn();
    out.status = r.status; out.text = await r.text();
  } catch (e) {
    out.error = {name: e.name, is_error: e instanceof dc.Error && e instanceof Error, status: e.status,
      reason: e.reason, detail: e.detail, problem: e.problem, message: String(e.message)};
  }
  out.calls = calls;
  return out;
}

(async () => {
  const results = [];
  results.push(await run("ok", [tokenOK(), reply(200, "text/plain", "done")], () =>
    dc.fetch("https://api.example:8443/v1/report?x=1", {method: "POST", body: "{}", action: "report",
      headers: {"Content-Type": "application/json"}})));
  results.push(await run("default-action", [tokenOK(), reply(202, "text/plain", "")], () =>
    dc.fetch("https://api.example/v1/items/a b+c", {})));
  results.push(await run("long-action", [tokenOK(), reply(202, "text/plain", "")], () =>
    dc.fetch("https://api.example/" + "x".repeat(100), {method: "delete"})));
  results.push(await run("api-problem", [tokenOK(), reply(401, "application/problem+json",
    {type: "https://domainconfirm.dev/problems/token-replayed", title: "Token replayed", status: 401,
     detail: "this token was already used", reason: "token-replayed"})], () =>
    dc.fetch("https://api.example/v1/report", {method: "POST", action: "report"})));
  results.push(await run("api-plain-error", [tokenOK(), reply(500, "text/plain", "oops")], () =>
    dc.fetch("https://api.example/v1/report", {action: "report"})));
  results.push(await run("token-problem", [reply(403, "application/problem+json",
    {title: "Cross-origin request refused", status: 403, detail: "tokens are only handed to this site's own pages",
     reason: "cross-origin-refused"})], () =>
    dc.fetch("https://api.example/v1/report", {action: "report"})));
  results.push(await run("token-not-json", [reply(502, "text/html", "<h1>Bad gateway</h1>")], () =>
    dc.fetch("https://api.example/v1/report", {action: "report"})));
  results.push(await run("token-malformed", [reply(200, "application/json", {nope: 1})], () =>
    dc.fetch("https://api.example/v1/report", {action: "report"})));
  dc.configure({tokenURL: "/custom/token"});
  results.push(await run("configured", [tokenOK(), reply(200, "text/plain", "ok")], () =>
    dc.fetch(new URL("https://api.example/v1/x"), {action: "x", mode: "same-origin", credentials: "include"})));
  process.stdout.write(JSON.stringify({results, logged}));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`

type harnessCall struct {
	URL         string            `json:"url"`
	Method      string            `json:"method"`
	Mode        string            `json:"mode"`
	Credentials string            `json:"credentials"`
	Headers     map[string]string `json:"headers"`
	Body        *string           `json:"body"`
}

type harnessError struct {
	Name    string         `json:"name"`
	IsError bool           `json:"is_error"`
	Status  int            `json:"status"`
	Reason  string         `json:"reason"`
	Detail  string         `json:"detail"`
	Problem map[string]any `json:"problem"`
	Message string         `json:"message"`
}

type harnessResult struct {
	Name   string        `json:"name"`
	Status int           `json:"status"`
	Text   string        `json:"text"`
	Error  *harnessError `json:"error"`
	Calls  []harnessCall `json:"calls"`
}

// nodeOrSkip finds node, skipping when it is missing (failing under CI=true).
func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		return node
	}
	msg := "node is not installed: install Node.js 18 or later to run the client script's tests"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true requires it)")
	}
	t.Skip(msg)
	return ""
}

func TestScriptUnderNode(t *testing.T) {
	node := nodeOrSkip(t)
	dir := t.TempDir()
	scriptFile := filepath.Join(dir, "domainconfirm.js")
	harnessFile := filepath.Join(dir, "harness.js")
	require.NoError(t, os.WriteFile(scriptFile, getScript(t), 0o600))
	require.NoError(t, os.WriteFile(harnessFile, []byte(scriptHarness), 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, harnessFile, scriptFile)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())

	var got struct {
		Results []harnessResult `json:"results"`
		Logged  []string        `json:"logged"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "harness output: %s", out)
	require.Empty(t, got.Logged, "the script must not log anything, least of all the token")
	require.NotContains(t, stderr.String(), "dct_")
	byName := map[string]harnessResult{}
	for _, r := range got.Results {
		byName[r.Name] = r
	}
	const token = "v1 https://shop.example dct_SECRETSECRETSECRETSECRETSECRETSECRETSEC"

	// tokenRequest checks the shape of a token request and returns its body.
	tokenRequest := func(t *testing.T, c harnessCall, url string) map[string]string {
		t.Helper()
		require.Equal(t, url, c.URL)
		require.Equal(t, http.MethodPost, c.Method)
		require.Equal(t, "same-origin", c.Credentials)
		require.Equal(t, "application/json", c.Headers["content-type"])
		require.NotContains(t, c.Headers, "domain-confirm")
		require.NotNil(t, c.Body)
		var body map[string]string
		require.NoError(t, json.Unmarshal([]byte(*c.Body), &body))
		require.Len(t, body, 2, "the body is exactly {audience, action}")
		return body
	}

	t.Run("token request and API call", func(t *testing.T) {
		r := byName["ok"]
		require.Nil(t, r.Error)
		require.Equal(t, 200, r.Status)
		require.Equal(t, "done", r.Text)
		require.Len(t, r.Calls, 2)
		body := tokenRequest(t, r.Calls[0], "/domainconfirm/token")
		require.Equal(t, map[string]string{"audience": "https://api.example:8443", "action": "report"}, body)
		api := r.Calls[1]
		require.Equal(t, "https://api.example:8443/v1/report?x=1", api.URL)
		require.Equal(t, http.MethodPost, api.Method)
		require.Equal(t, "cors", api.Mode)
		require.Equal(t, "omit", api.Credentials)
		require.Equal(t, token, api.Headers["domain-confirm"])
		require.Equal(t, "application/json", api.Headers["content-type"], "the page's own headers are kept")
		require.Equal(t, "{}", *api.Body)
	})

	t.Run("default action is method and path, sanitised", func(t *testing.T) {
		r := byName["default-action"]
		require.Nil(t, r.Error)
		require.Equal(t, 202, r.Status)
		body := tokenRequest(t, r.Calls[0], "/domainconfirm/token")
		require.Equal(t, "https://api.example", body["audience"])
		require.Equal(t, "GET:/v1/items/a_20b_c", body["action"])
		require.Equal(t, http.MethodGet, r.Calls[1].Method)

		r = byName["long-action"]
		require.Nil(t, r.Error)
		body = tokenRequest(t, r.Calls[0], "/domainconfirm/token")
		require.Equal(t, ("DELETE:/" + strings.Repeat("x", 100))[:64], body["action"])
	})

	t.Run("API problem becomes an Error with its reason", func(t *testing.T) {
		r := byName["api-problem"]
		require.NotNil(t, r.Error)
		require.True(t, r.Error.IsError, "thrown value is a domainconfirm.Error")
		require.Equal(t, "DomainConfirmError", r.Error.Name)
		require.Equal(t, 401, r.Error.Status)
		require.Equal(t, "token-replayed", r.Error.Reason)
		require.Equal(t, "this token was already used", r.Error.Detail)
		require.Equal(t, "Token replayed", r.Error.Problem["title"])
		require.NotContains(t, r.Error.Message, "dct_")
		require.Len(t, r.Calls, 2)
	})

	t.Run("API error that is not problem+json is returned", func(t *testing.T) {
		r := byName["api-plain-error"]
		require.Nil(t, r.Error)
		require.Equal(t, 500, r.Status)
		require.Equal(t, "oops", r.Text)
	})

	t.Run("token endpoint problem becomes an Error with its reason", func(t *testing.T) {
		r := byName["token-problem"]
		require.NotNil(t, r.Error)
		require.True(t, r.Error.IsError)
		require.Equal(t, 403, r.Error.Status)
		require.Equal(t, "cross-origin-refused", r.Error.Reason)
		require.Equal(t, "tokens are only handed to this site's own pages", r.Error.Detail)
		require.Len(t, r.Calls, 1, "the API is not called without a token")

		r = byName["token-not-json"]
		require.NotNil(t, r.Error)
		require.Equal(t, 502, r.Error.Status)
		require.Equal(t, "token-unavailable", r.Error.Reason)
		require.Nil(t, r.Error.Problem)
		require.Len(t, r.Calls, 1)

		r = byName["token-malformed"]
		require.NotNil(t, r.Error)
		require.Equal(t, "malformed-token-response", r.Error.Reason)
		require.Len(t, r.Calls, 1)
	})

	t.Run("configure and init overrides", func(t *testing.T) {
		r := byName["configured"]
		require.Nil(t, r.Error)
		require.Len(t, r.Calls, 2)
		tokenRequest(t, r.Calls[0], "/custom/token")
		require.Equal(t, "same-origin", r.Calls[1].Mode)
		require.Equal(t, "include", r.Calls[1].Credentials)
		require.Equal(t, token, r.Calls[1].Headers["domain-confirm"])
	})
}

// The script handler is what a page loads; make sure it really is readable
// JavaScript to node (a syntax error would otherwise surface only in a browser).
func TestScriptParses(t *testing.T) {
	node := nodeOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--check", "-")
	cmd.Stdin = strings.NewReader(string(getScript(t)))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node --check: %s", out)
}
