package main

// The http-hello workload for Go: net/http answering "Hello, World!" on
// GET /. Run with -http-port; it prints "listening on ADDRESS".

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
)

func runHTTPServer(port int, procs int, tlsCert string, tlsKey string) {
	runtime.GOMAXPROCS(procs)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fail("listen: %v", err)
	}
	hello := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	if tlsCert != "" {
		fmt.Printf("listening on %s (net/http with TLS, GOMAXPROCS=%d)\n", ln.Addr(), procs)
		os.Stdout.Sync()
		if err := http.ServeTLS(ln, mux, tlsCert, tlsKey); err != nil {
			fail("serve: %v", err)
		}
		return
	}
	fmt.Printf("listening on %s (net/http, GOMAXPROCS=%d)\n", ln.Addr(), procs)
	os.Stdout.Sync()
	if err := http.Serve(ln, mux); err != nil {
		fail("serve: %v", err)
	}
}
