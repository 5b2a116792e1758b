// Package wire is the one implementation of the domainconfirm protocol v1
// shared by the verify and callback packages: origins, secrets, tokens, the
// Domain-Confirm request header, the signed confirmation messages and their
// signatures. PROTOCOL.md is its specification; testdata/ holds the vectors
// both this package and other-language implementations are tested against.
//
// Nothing in this package logs, and no error it returns contains a token or a
// secret.
package wire
