// Command webapp is the quickstart's web service: it answers / with its version and host
// name, and /healthz with ok. Run with -check URL it is its own health check client.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	version := flag.String("version", "v1", "version to answer with")
	check := flag.String("check", "", "health check: GET this URL, exit 0 on 200")
	get := flag.String("get", "", "client: GET this URL and print the body")
	flag.Parse()
	if *get != "" {
		resp, err := http.Get(*get)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(os.Stdout, resp.Body)
		return
	}
	if *check != "" {
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(*check)
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		os.Exit(0)
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s, version %s\n", host, *version)
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	fmt.Printf("webapp %s listening on %s\n", *version, *listen)
	if err := http.ListenAndServe(*listen, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
