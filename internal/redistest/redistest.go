// Package redistest connects tests to a real redis-server on loopback, or
// skips them.
//
// The tests of the Redis stores read the server's address from the
// environment variable DOMAINCONFIRM_REDIS_ADDR (such as "127.0.0.1:6379";
// .ci/run starts a private server and sets it). When it is unset or the
// server does not answer, the tests skip with a message saying how to run
// them, except under CI=true, where they fail: CI must never pass by
// skipping them.
//
// Tests share one server, possibly a developer's own: they never flush it,
// and each test writes only under its own random key prefix ([Prefix]), in
// keys that expire within minutes.
//
// The same tests run once more on a Redis Cluster when the environment
// variable DOMAINCONFIRM_REDIS_CLUSTER_ADDRS lists its nodes (such as
// "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"; .ci/run starts three
// masters and sets it): [ClusterAddrs] and [ClusterClient], with the same
// rules, skip or fail under CI=true, loopback only.
//
// [StartServer] runs a private redis-server that a test may stop and start
// again, for fault tests; [StartCluster] a private Redis Cluster of three
// masters, any of which a test may stop and start again.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvAddr names the environment variable holding the address of the
// redis-server the tests use.
const EnvAddr = "DOMAINCONFIRM_REDIS_ADDR"

// howTo says how to run the Redis tests.
const howTo = "start redis-server and set " + EnvAddr + "=127.0.0.1:6379 (.ci/run does both)"

// Unavailable skips the test, or fails it under CI=true, because something
// the Redis tests need is missing.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	unavailable(tb, howTo, format, args...)
}

// unavailable is Unavailable with the how-to of a kind of test.
func unavailable(tb testing.TB, howTo, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatalf("redistest: %s; under CI=true the Redis tests must run: %s", msg, howTo)
	}
	tb.Skipf("redistest: %s; to run the Redis tests, %s", msg, howTo)
}

// Addr returns the address in DOMAINCONFIRM_REDIS_ADDR once it answers
// PING. It skips the test (fails it under CI=true) when the variable is
// unset or the server does not answer, and fails it when the address is not
// on loopback: tests send traffic to loopback only.
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		Unavailable(tb, "%s is not set", EnvAddr)
	}
	if err := checkLoopback(addr); err != nil {
		tb.Fatalf("redistest: %s=%q: %v", EnvAddr, addr, err)
	}
	c := redis.NewClient(options(addr))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		Unavailable(tb, "redis-server at %s does not answer: %v", addr, err)
	}
	return addr
}

// Client returns a client of the server in DOMAINCONFIRM_REDIS_ADDR (see
// Addr), closed when the test ends. Its pool holds 64 connections, enough
// for the tests' and benchmarks' concurrency.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(options(Addr(tb)))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// options are the client options of the tests: the defaults but for a pool
// large enough for 32 goroutines and more, and short timeouts.
func options(addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		PoolSize:     64,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
	}
}

// Prefix returns a key prefix of its own for one test, such as
// "domainconfirm-test:3f2a9c0d1e4b5a6f:", so that tests and packages that
// share a server never see each other's keys.
func Prefix(tb testing.TB) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "domainconfirm-test:" + hex.EncodeToString(b[:]) + ":"
}

// checkLoopback refuses an address whose host is not a loopback IP address
// or "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return errors.New("not a loopback address (use 127.0.0.1:PORT): the tests send traffic to loopback only")
	}
	return nil
}
