module github.com/domainconfirm/domainconfirm/internal/benchmarks

go 1.26.0

require (
	github.com/domainconfirm/domainconfirm v0.0.0-00010101000000-000000000000
	github.com/domainconfirm/domainconfirm/callback/redisstore v0.0.0-00010101000000-000000000000
	github.com/domainconfirm/domainconfirm/internal/redistest v0.0.0-00010101000000-000000000000
	github.com/domainconfirm/domainconfirm/verify/redisstore v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	code.dny.dev/ssrf v0.3.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/patrickmn/go-cache v2.1.0+incompatible // indirect
	github.com/rs/cors v1.11.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace (
	github.com/domainconfirm/domainconfirm => ../..
	github.com/domainconfirm/domainconfirm/callback/redisstore => ../../callback/redisstore
	github.com/domainconfirm/domainconfirm/internal/redistest => ../redistest
	github.com/domainconfirm/domainconfirm/verify/redisstore => ../../verify/redisstore
)
