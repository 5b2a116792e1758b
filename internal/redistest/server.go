package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a private server may take to accept
// connections.
const startTimeout = 10 * time.Second

// Server is a private redis-server on loopback that a test can kill and
// start again on the same port, for fault tests. It runs with an
// append-only file fsynced on every write in a temporary directory, so a
// killed server comes back with every key it had acknowledged: what a test
// then sees is the outage alone, not a loss of data.
type Server struct {
	// Addr is the server's address, "127.0.0.1:PORT". It does not change
	// when the server is started again.
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	port int
	args []string // beyond port, bind, dir and logging: persistence, cluster mode

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *bytes.Buffer
}

// StartServer starts a private redis-server on a free loopback port and
// returns once it accepts connections. It is killed when the test ends. It
// skips the test (fails it under CI=true) when redis-server is not
// installed.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server is not installed (apt-get install redis-server)")
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), args: []string{
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
	}}
	// A free port: the kernel picks one, and the server takes it over. In
	// the short window between the two another process could take it; the
	// server would then fail to start and the test say so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: finding a free port: %v", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	tb.Cleanup(s.Kill)
	s.Start()
	return s
}

// Start starts the server again after Kill, on the same port and with the
// same data, and returns once it accepts connections.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatalf("redistest: server at %s is already running", s.Addr)
	}
	log := new(bytes.Buffer)
	args := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.log = cmd, done, log

	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			s.cmd = nil
			s.tb.Fatalf("redistest: redis-server on %s exited at start: %s", s.Addr, log)
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: redis-server on %s does not answer after %s: %v", s.Addr, startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the server to accept connections, bounded above
	}
}

// Kill kills the server (SIGKILL, as a crash would) and returns once it has
// exited. Killing a server that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		s.tb.Errorf("redistest: redis-server on %s did not exit after SIGKILL", s.Addr)
	}
	s.cmd = nil
}

// Client returns a client of the server that fails fast while the server is
// down: one dial attempt per command, no retries. It is closed when the
// test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:          s.Addr,
		PoolSize:      64,
		DialTimeout:   time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		MaxRetries:    -1,
		DialerRetries: 1,
	})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// String describes the server for messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server on %s", s.Addr) }
