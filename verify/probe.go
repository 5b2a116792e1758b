package verify

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Probe thresholds and limits.
const (
	// ProbesPerSecond and ProbeBurst bound how often a Verifier probes, over
	// all registrations: a probe is a call-back no token pays for.
	ProbesPerSecond = 1
	ProbeBurst      = 5
	// ProbeSlow is the probe duration above which a registration gets a
	// "slow" warning: call-backs add this much to every cold request.
	ProbeSlow = time.Second
	// ProbeSkewWarning is the clock difference above which a registration
	// gets a "clock-skew" warning, well before the 5 minute tolerance fails.
	ProbeSkewWarning = 30 * time.Second
)

// ProbeReport is what Probe found out about a registration.
type ProbeReport struct {
	Origin      string
	URL         string
	IP          string         // the address dialled, if a connection was made
	Status      int            // the HTTP status of the answer, 0 if none
	Duration    time.Duration  // the whole exchange
	ClockSkew   time.Duration  // the site's clock minus the verifier's, from the signed answer
	SecretsHeld []int          // which of the registration's secrets (1-based) the site proved it holds
	Problems    []ProbeProblem // what stops the registration from working
	Warnings    []ProbeProblem // what works but should be fixed
}

// OK reports whether the registration works: no problems, maybe warnings.
func (r *ProbeReport) OK() bool { return len(r.Problems) == 0 }

// ProbeProblem is one finding of a probe, with a stable code and a message
// that says what to fix.
type ProbeProblem struct {
	Code    string // private-address, tls, unreachable, timeout, redirect, wrong-path, status, wrong-secret, clock-skew, not-domainconfirm, wrong-origin, slow, partial-secrets
	Message string
}

func (p ProbeProblem) String() string { return p.Code + ": " + p.Message }

// Probe sends a signed probe to reg's confirmation URL, which the callback
// handler answers by proving it holds the shared secrets, and reports what
// an integrator must fix: a wrong path, a redirect, a TLS or private-address
// error, a wrong secret, clock skew, a slow answer. Use it when an origin is
// registered (reg need not be in the Registry yet) and to diagnose one that
// goes unverified. It uses the verifier's call-back client, so it is subject
// to the same destination guard, but not to the origins' rate limits or
// breakers; probes as a whole are limited to ProbesPerSecond (bursts of
// ProbeBurst), beyond which the report has the problem "rate-limited".
//
// Probe is the API operator's tool. Its report is precise on purpose: the
// address a name resolved to in the API's own network, whether it is
// private, TLS and connection errors. Do not hand it to tenants as it is
// (a tenant who can register names could map the API's internal DNS with
// it); give them the codes that concern their own site, or a summary.
func (v *Verifier) Probe(ctx context.Context, reg *Registration) *ProbeReport {
	rep := &ProbeReport{}
	if !reg.usable() {
		rep.Problems = append(rep.Problems, ProbeProblem{"registration", "the registration is unusable: build it with NewRegistration"})
		return rep
	}
	if !v.probeLimit.Allow() {
		rep.Origin, rep.URL = reg.origin, reg.urlString
		rep.Problems = append(rep.Problems, ProbeProblem{"rate-limited", fmt.Sprintf("probes are limited to %d a second; try again shortly", ProbesPerSecond)})
		return rep
	}
	rep.Origin, rep.URL = reg.origin, reg.urlString
	challenge := wire.NewChallenge()
	body, err := json.Marshal(wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: reg.origin, Audience: v.audience, Challenge: challenge})
	if err != nil {
		rep.Problems = append(rep.Problems, ProbeProblem{"internal", err.Error()})
		return rep
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	x := v.exchange(ctx, reg, body, true)
	rep.IP, rep.Status, rep.Duration = x.remoteIP, x.status, x.duration
	if x.answerTS != 0 {
		rep.ClockSkew = time.Duration(x.answerTS-v.now().Unix()) * time.Second
	}
	problem := func(code, msg string) { rep.Problems = append(rep.Problems, ProbeProblem{code, msg}) }
	if x.err != nil {
		code, msg := probeDiagnosis(x, rep.URL)
		problem(code, msg)
	} else {
		var ans wire.ProbeResponse
		switch err := wire.Decode(x.answer, &ans); {
		case err != nil:
			problem("not-domainconfirm", "the answer is signed but is not a probe answer: is the callback handler up to date? "+err.Error())
		case ans.Check() != nil:
			problem("not-domainconfirm", "the answer is signed but is not a valid probe answer: "+ans.Check().Error())
		case !hmac.Equal([]byte(ans.Challenge), []byte(challenge)):
			problem("not-domainconfirm", "the answer does not echo the probe's challenge")
		default:
			for i, k := range reg.keys {
				want := wire.ProbeProof(k, challenge)
				for _, p := range ans.Proofs {
					if hmac.Equal([]byte(p), []byte(want)) {
						rep.SecretsHeld = append(rep.SecretsHeld, i+1)
						break
					}
				}
			}
			if len(rep.SecretsHeld) == 0 {
				problem("wrong-secret", "the site proved no registered secret")
			}
		}
	}
	if rep.OK() && len(rep.SecretsHeld) < len(reg.keys) {
		rep.Warnings = append(rep.Warnings, ProbeProblem{"partial-secrets", fmt.Sprintf(
			"the site holds secrets %v of the %d registered: fine during a rotation, otherwise remove the others", rep.SecretsHeld, len(reg.keys))})
	}
	if skew := rep.ClockSkew.Abs(); skew > ProbeSkewWarning {
		rep.Warnings = append(rep.Warnings, ProbeProblem{"clock-skew", fmt.Sprintf(
			"the site's clock is %s off (tolerance %s): run NTP on both sides", rep.ClockSkew, wire.Tolerance)})
	}
	if rep.Duration > ProbeSlow {
		rep.Warnings = append(rep.Warnings, ProbeProblem{"slow", fmt.Sprintf(
			"the answer took %s; every cold request waits for it (deadline %s)", rep.Duration.Round(time.Millisecond), v.timeout)})
	}
	return rep
}

// probeDiagnosis turns a failed exchange into an actionable problem.
func probeDiagnosis(x exchange, url string) (code, msg string) {
	switch x.err.Reason {
	case "destination-denied":
		return "private-address", url + " resolves to an address the verifier never calls (loopback, private, link-local, special-purpose) or uses a port other than the allowed ones: serve it on a public address, on port 443. " + x.err.Detail
	case "callback-tls":
		return "tls", "TLS failed: the certificate must be valid for the host and chain to a public CA. " + x.err.Detail
	case "callback-timeout":
		return "timeout", "no answer within the deadline: " + x.err.Detail
	case "callback-failed":
		return "unreachable", x.err.Detail
	case "callback-redirect":
		return "redirect", x.err.Detail
	case "answer-too-large":
		return "not-domainconfirm", "the answer is too large to be a domainconfirm answer: " + x.err.Detail
	case "bad-timestamp":
		return "clock-skew", "the answer's timestamp is outside the 5 minute tolerance: run NTP on the site"
	case "bad-signature":
		if x.unsigned {
			return "not-domainconfirm", url + " answered 200 without any Domainconfirm header: is the callback handler mounted at exactly this path? (a catch-all page answered instead)"
		}
		return "wrong-secret", "the answer is not signed with a registered secret: " + x.err.Detail
	case "callback-status":
		switch {
		case x.status == 404 || x.status == 405:
			return "wrong-path", fmt.Sprintf("%s answered %d: mount the callback handler at exactly this path (POST)", url, x.status)
		case x.problem == "bad-signature":
			return "wrong-secret", "the site could not verify the probe's signature: the secret registered here is not one the site has"
		case x.problem == "bad-timestamp":
			return "clock-skew", "the site refused the probe's timestamp: one of the two clocks is more than 5 minutes off"
		case x.problem == wire.ReasonWrongOrigin:
			return "wrong-origin", "the confirmation URL answers for another origin"
		}
		return "status", x.err.Detail
	}
	return x.err.Reason, x.err.Detail
}
