// Package embedded runs a NATS server with JetStream inside the process,
// for `hogsend dev` and for tests. Clients of this process connect through
// an in-memory pipe; other processes can connect over TCP when Listen is
// set.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long Start waits for the server to accept
// connections; recovering a large store can take a few seconds.
const readyTimeout = 30 * time.Second

// Options configures the embedded server.
type Options struct {
	// DataDir holds the JetStream file store. Required: a restart on the same
	// directory recovers every stream, consumer and pending schedule.
	DataDir string
	// Listen is the host:port of the TCP client listener. "" or "off" runs
	// without one (in-process clients only); port 0 picks a free port.
	Listen string
	// SyncAlways fsyncs every write: slower, but an acknowledged publish
	// survives a power cut.
	SyncAlways bool
	// ServerName names the server in advisories and monitoring; the server
	// picks a random one when empty.
	ServerName string
}

// Server is a running embedded NATS server.
type Server struct {
	ns        *server.Server
	listening bool
}

// Start starts the server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("start nats: DataDir is required")
	}
	so := &server.Options{
		ServerName: opts.ServerName,
		JetStream:  true,
		StoreDir:   opts.DataDir,
		SyncAlways: opts.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
	}
	listening := opts.Listen != "" && opts.Listen != "off"
	if listening {
		host, port, err := splitListen(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("start nats: Listen: %w", err)
		}
		so.Host, so.Port = host, port
	} else {
		so.DontListen = true
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("start nats: not ready after %s", readyTimeout)
	}
	return &Server{ns: ns, listening: listening}, nil
}

// splitListen parses host:port. Port 0 means "any free port", which the
// server spells -1 (its 0 means the default 4222).
func splitListen(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Connect opens a client connection through an in-memory pipe, which skips
// the TCP stack and works without a listener.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns)}, opts...)
	nc, err := nats.Connect(s.ns.ClientURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the TCP URL other processes connect to, or "" when the server
// does not listen.
func (s *Server) ClientURL() string {
	if !s.listening {
		return ""
	}
	return s.ns.ClientURL()
}

// NATS returns the underlying server for monitoring and tests.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server gracefully and waits until it has flushed its
// store and closed every connection.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
