package wire

// Exported for the tests of package wire_test.
var (
	NormalizeOriginFull  = normalizeOrigin
	IsCanonicalDNSOrigin = isCanonicalDNSOrigin
)
