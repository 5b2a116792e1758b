module github.com/domainconfirm/domainconfirm

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/patrickmn/go-cache v2.1.0+incompatible
	golang.org/x/sync v0.25.0
)
