package main

// The echo workload for goroutines: a goroutine per connection, echoing
// what it reads, as the usual Go server is written. Run with -echo-port;
// it prints "listening on ADDRESS" and serves until killed.

import (
	"fmt"
	"net"
	"os"
	"runtime"
)

func runEchoServer(port int, procs int) {
	runtime.GOMAXPROCS(procs)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening on %s (GOMAXPROCS=%d)\n", ln.Addr(), procs)
	os.Stdout.Sync()
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 65536)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(conn)
	}
}
