module github.com/domainconfirm/domainconfirm/callback/redisstore

go 1.26.0

require (
	github.com/domainconfirm/domainconfirm v0.0.0-00010101000000-000000000000
	github.com/domainconfirm/domainconfirm/internal/redistest v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace (
	github.com/domainconfirm/domainconfirm => ../..
	github.com/domainconfirm/domainconfirm/internal/redistest => ../../internal/redistest
)
