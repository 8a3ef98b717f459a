// Package redistest runs throwaway redis-server processes for tests: on a
// free 127.0.0.1 port, without persistence, killable and restartable on the
// same port to test outages.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary is where tests expect redis-server (the Debian package's path).
const Binary = "/usr/bin/redis-server"

// ErrNoBinary means redis-server is not installed; tests should skip.
var ErrNoBinary = errors.New("redis-server not installed at " + Binary)

// Server is one redis-server process.
type Server struct {
	// Addr is host:port, stable across Restart.
	Addr    string
	cluster bool
	dir     string
	cmd     *exec.Cmd
}

// Start runs a standalone redis-server and waits until it answers.
func Start() (*Server, error) { return start(false) }

// StartCluster runs a one-node Redis Cluster owning every slot, so clients
// see real Cluster behaviour (slot routing, CROSSSLOT errors).
func StartCluster() (*Server, error) { return start(true) }

func start(cluster bool) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, ErrNoBinary
	}
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Addr: addr, cluster: cluster, dir: dir}
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cluster {
		if err := s.assignSlots(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) run() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes-"+port+".conf"))
	}
	cmd := exec.Command(Binary, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) assignSlots() error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		return fmt.Errorf("cluster addslotsrange: %w", err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster on %s did not become ok", s.Addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill stops the server at once (SIGKILL), losing its data.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	s.cmd = nil
}

// Restart starts a killed server again on the same address, empty.
func (s *Server) Restart() error {
	if s.cmd != nil {
		return errors.New("redistest: restart of a running server")
	}
	return s.run()
}

// Close kills the server and removes its directory.
func (s *Server) Close() {
	s.Kill()
	os.RemoveAll(s.dir)
}
