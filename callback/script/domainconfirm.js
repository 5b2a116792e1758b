// domainconfirm.js: call an API from a page with a Domain-Confirm action
// token. Served by Go's callback.ScriptHandler; no dependencies, no build
// step. It never logs or keeps the token.
//
//   domainconfirm.configure({tokenURL: "/domainconfirm/token"}); // optional
//   const resp = await domainconfirm.fetch("https://api.example/v1/report",
//     {method: "POST", body, action: "report"});
//
// init.action is the action label; by default the method and path, such as
// "POST:/v1/report", characters outside A-Z a-z 0-9 . _ : / - made "_", cut
// to 64. url is a string or URL. A refused token, or an API answer that is
// not 2xx and is problem+json, throws domainconfirm.Error (.status, .reason,
// .detail, .problem); any other answer is returned, like fetch.
(function (g) {
  "use strict";
  var tokenURL = "/domainconfirm/token";

  class DomainConfirmError extends Error {
    constructor(status, problem, reason) {
      var p = problem || {};
      reason = p.reason || reason;
      super("domainconfirm: " + reason + (p.detail ? ": " + p.detail : ""));
      this.name = "DomainConfirmError";
      this.status = status;
      this.reason = reason;
      this.detail = p.detail || "";
      this.problem = problem || null;
    }
  }

  // json reads resp's body if its Content-Type matches re: null if not,
  // {} if the body is not JSON.
  async function json(resp, re) {
    if (!re.test(resp.headers.get("Content-Type"))) return null;
    try { return await resp.json(); } catch (e) { return {}; }
  }

  async function dcfetch(url, init) {
    init = Object.assign({}, init);
    var u = new URL(url, g.location && g.location.href);
    var action = init.action || ((init.method || "GET").toUpperCase() + ":" +
      u.pathname).replace(/[^\w.:\/-]/g, "_").slice(0, 64);
    delete init.action;

    // 1. An action token from this site, for the API's origin.
    var t = await g.fetch(tokenURL, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({audience: u.origin, action: action})
    });
    var tok = await json(t, /^application\/(problem\+)?json\b/i);
    if (!t.ok) throw new DomainConfirmError(t.status, tok, "token-unavailable");
    if (!tok || typeof tok.header != "string") {
      throw new DomainConfirmError(t.status, null, "malformed-token-response");
    }

    // 2. The API call with the token; no cookies, no redirects.
    var h = new Headers(init.headers);
    h.set("Domain-Confirm", tok.header);
    var resp = await g.fetch(u.href,
      Object.assign({mode: "cors", credentials: "omit"}, init,
        {headers: h, redirect: "error"}));
    var p = !resp.ok && await json(resp, /^application\/problem\+json\b/i);
    if (p) throw new DomainConfirmError(resp.status, p, "http-" + resp.status);
    return resp;
  }

  g.domainconfirm = {
    configure: function (opts) {
      if (opts && opts.tokenURL) tokenURL = String(opts.tokenURL);
    },
    fetch: dcfetch,
    Error: DomainConfirmError
  };
})(globalThis);
