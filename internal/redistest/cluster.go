package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvClusterAddrs names the environment variable holding the addresses of
// the Redis Cluster the tests use, comma-separated, such as
// "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".
const EnvClusterAddrs = "DOMAINCONFIRM_REDIS_CLUSTER_ADDRS"

// clusterHowTo says how to run the Redis Cluster tests.
const clusterHowTo = "start three redis-server --cluster-enabled yes nodes on loopback, join them with " +
	"redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 --cluster-replicas 0 --cluster-yes, and set " +
	EnvClusterAddrs + "=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 (.ci/run does all of it)"

// ClusterAddrs returns the addresses in DOMAINCONFIRM_REDIS_CLUSTER_ADDRS
// once the cluster answers with cluster_state:ok. It skips the test (fails
// it under CI=true) when the variable is unset or the cluster is not
// there or not ok, and fails it when an address, or an address a node
// announces for the cluster's slots, is not on loopback.
func ClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	env := os.Getenv(EnvClusterAddrs)
	if env == "" {
		unavailable(tb, clusterHowTo, "%s is not set", EnvClusterAddrs)
	}
	var addrs []string
	for a := range strings.SplitSeq(env, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := checkLoopback(a); err != nil {
			tb.Fatalf("redistest: %s=%q: %s: %v", EnvClusterAddrs, env, a, err)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		tb.Fatalf("redistest: %s=%q holds no address", EnvClusterAddrs, env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := redis.NewClient(options(addrs[0]))
	defer c.Close()
	state, err := clusterState(ctx, c)
	if err != nil {
		unavailable(tb, clusterHowTo, "Redis Cluster node at %s does not answer CLUSTER INFO: %v", addrs[0], err)
	}
	if state != "ok" {
		unavailable(tb, clusterHowTo, "Redis Cluster at %s is in state %q, not ok", addrs[0], state)
	}
	// The client dials the addresses the nodes announce, not the seeds.
	//lint:ignore SA1019 go-redis's cluster client reads CLUSTER SLOTS: these are the addresses it dials
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		unavailable(tb, clusterHowTo, "Redis Cluster node at %s does not answer CLUSTER SLOTS: %v", addrs[0], err)
	}
	for _, s := range slots {
		for _, n := range s.Nodes {
			if err := checkLoopback(n.Addr); err != nil {
				tb.Fatalf("redistest: the Redis Cluster in %s announces node %s: %v", EnvClusterAddrs, n.Addr, err)
			}
		}
	}
	return addrs
}

// ClusterClient returns a client of the Redis Cluster in
// DOMAINCONFIRM_REDIS_CLUSTER_ADDRS (see ClusterAddrs), closed when the
// test ends. Its pools hold 64 connections per node, as Client's does.
func ClusterClient(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        ClusterAddrs(tb),
		PoolSize:     64,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterNodeTimeout is the private clusters' cluster-node-timeout: a node
// unreachable for that long is flagged as failing. Short, so that a fault
// test sees the whole cycle (down, detected, back) in seconds.
const clusterNodeTimeout = time.Second

// Cluster is a private Redis Cluster on loopback of three masters without
// replicas, each owning a third of the slots, for fault tests. Its nodes
// keep no data on disk (no RDB, no append-only file), only their cluster
// configuration: a node killed and started again rejoins the cluster with
// its slots, but empty. Its cluster-node-timeout is one second.
type Cluster struct {
	// Addrs are the nodes' addresses, "127.0.0.1:PORT", in the order Kill
	// and Start number them. They do not change when a node is started
	// again.
	Addrs []string

	tb    testing.TB
	nodes []*Server
}

// StartCluster starts a private Redis Cluster of three masters on free
// loopback ports and returns once every node reports cluster_state:ok. Its
// nodes are killed when the test ends. It skips the test (fails it under
// CI=true) when redis-server is not installed; a cluster that does not
// form fails the test.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, clusterHowTo, "redis-server is not installed (apt-get install redis-server)")
	}
	c := &Cluster{tb: tb}
	for range 3 {
		dir := tb.TempDir()
		port := freeClusterPort(tb)
		s := &Server{tb: tb, bin: bin, dir: dir, port: port, args: []string{
			"--save", "",
			"--appendonly", "no",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10),
		}}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		tb.Cleanup(s.Kill)
		s.Start()
		c.nodes = append(c.nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}

	// What redis-cli --cluster create does: a third of the slots and a
	// config epoch of its own to each node, then each meets the first.
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	const slots = 16384
	for i, s := range c.nodes {
		cl := c.nodeClient(i)
		lo, hi := i*slots/len(c.nodes), (i+1)*slots/len(c.nodes)-1
		err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err()
		if err == nil {
			err = cl.Do(ctx, "cluster", "set-config-epoch", i+1).Err()
		}
		if err == nil && i > 0 {
			err = cl.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.nodes[0].port)).Err()
		}
		cl.Close()
		if err != nil {
			tb.Fatalf("redistest: forming a Redis Cluster: node %s: %v", s.Addr, err)
		}
	}
	c.WaitOK(startTimeout)
	return c
}

// Kill kills node i (SIGKILL, as a crash would) and returns once it has
// exited. Its keys are lost.
func (c *Cluster) Kill(i int) { c.nodes[i].Kill() }

// Start starts node i again after Kill, on the same port and with the same
// cluster configuration file, and returns once it accepts connections. It
// comes back empty; the cluster says ok again some seconds later (WaitOK).
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	c.nodes[i].Start()
}

// State returns what node i says of the cluster in CLUSTER INFO: "ok" or
// "fail".
func (c *Cluster) State(ctx context.Context, i int) (string, error) {
	cl := c.nodeClient(i)
	defer cl.Close()
	return clusterState(ctx, cl)
}

// WaitOK waits until every running node reports cluster_state:ok, and fails
// the test if that takes longer than timeout.
func (c *Cluster) WaitOK(timeout time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for i := range c.nodes {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			state, err := c.State(ctx, i)
			cancel()
			if err == nil && state == "ok" {
				break
			}
			if time.Now().After(deadline) {
				c.tb.Fatalf("redistest: Redis Cluster node %s is not ok after %s: state %q, %v", c.Addrs[i], timeout, state, err)
			}
			time.Sleep(20 * time.Millisecond) // polling for the cluster to settle, bounded above
		}
	}
}

// Client returns a cluster client that fails fast while a node is down:
// short timeouts, one dial attempt per try, the default 3 redirects and
// retries with short backoffs. Its pools hold 64 connections per node. It
// is closed when the test ends.
func (c *Cluster) Client() *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:           c.Addrs,
		PoolSize:        64,
		DialTimeout:     time.Second,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		MaxRedirects:    3,
		DialerRetries:   1,
		MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 100 * time.Millisecond,
	})
	c.tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// nodeClient is a plain client of node i alone, failing fast.
func (c *Cluster) nodeClient(i int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: c.Addrs[i], DialTimeout: time.Second, MaxRetries: -1, DialerRetries: 1})
}

// clusterState is the cluster_state field of CLUSTER INFO on c's node.
func clusterState(ctx context.Context, c *redis.Client) (string, error) {
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", errors.New("no cluster_state in CLUSTER INFO")
}

// freeClusterPort returns a loopback port that is free, as is the port
// 10,000 above it, where a cluster node listens for its peers (the bus).
// In the short window before the node takes them another process could;
// the node would then fail to start and the test say so.
func freeClusterPort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		port := 20000 + rand.IntN(35000) // the bus port stays below 65536
		l1, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port
	}
	tb.Fatalf("redistest: no free pair of loopback ports (PORT, PORT+10000) for a cluster node")
	return 0
}

// String describes the cluster for messages.
func (c *Cluster) String() string {
	return fmt.Sprintf("Redis Cluster on %s", strings.Join(c.Addrs, ","))
}

// ForEach runs test as two subtests: "single", on the redis-server in
// DOMAINCONFIRM_REDIS_ADDR, and "cluster", on the Redis Cluster in
// DOMAINCONFIRM_REDIS_CLUSTER_ADDRS (each skipped, or failed under CI=true,
// when missing). newClient returns a new client of it at each call, as
// another process would have.
func ForEach(t *testing.T, test func(t *testing.T, newClient func() redis.UniversalClient)) {
	t.Helper()
	for _, r := range []struct {
		name string
		new  func(testing.TB) redis.UniversalClient
	}{
		{"single", func(tb testing.TB) redis.UniversalClient { return Client(tb) }},
		{"cluster", func(tb testing.TB) redis.UniversalClient { return ClusterClient(tb) }},
	} {
		t.Run(r.name, func(t *testing.T) {
			test(t, func() redis.UniversalClient { return r.new(t) })
		})
	}
}
