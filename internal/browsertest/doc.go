// Package browsertest holds the end-to-end browser test of domainconfirm: a
// real headless Chromium, driven with github.com/chromedp/chromedp, loads
// pages from a customer site and from an unregistered site, both on loopback
// TLS under their example host names, and calls an API guarded by
// verify.Verifier.CORS and verify.Verifier.Require.
//
// It is a separate module so that chromedp stays out of the module graph of
// the root module (internal/depcheck and .ci/run check that). Run it with
//
//	cd internal/browsertest && go test -v ./
//
// It needs Debian's chromium (apt-get install -y chromium). Without it the
// test skips, except under CI=true, where it fails. When
// DOMAINCONFIRM_ARTIFACTS names a folder, a PNG screenshot of each page is
// saved there.
package browsertest
