// Command testapp is the program inside Dao's test images: a static binary that does, on
// request, what tests need a container to do.
//
//	testapp [flags]
//
// With no flags it runs until it receives SIGTERM or SIGINT and then exits 0.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

func main() {
	var (
		listen    = flag.String("listen", "", "serve HTTP on this address: / answers the version, /healthz 200 (or 500 with -unhealthy)")
		version   = flag.String("version", "v1", "text / answers with")
		unhealthy = flag.Bool("unhealthy", false, "make /healthz answer 500")
		check     = flag.String("check", "", "health check client: GET this URL and exit 0 on 200, 1 otherwise")
		printEnv  = flag.Bool("env", false, "print the environment, sorted, one variable a line")
		say       = flag.String("say", "", "print this line to stdout at start")
		sayErr    = flag.String("say-stderr", "", "print this line to stderr at start")
		exitCode  = flag.Int("exit", -1, "exit with this code after -after (default: run until signalled)")
		after     = flag.Duration("after", 0, "wait this long before -exit")
		ignore    = flag.Bool("ignore-term", false, "ignore SIGTERM (and SIGINT)")
		termDelay = flag.Duration("term-delay", 0, "on SIGTERM, wait this long before exiting 0")
		allocMiB  = flag.Int("alloc", 0, "allocate and touch this many MiB, then keep running")
		writeFile = flag.String("write", "", "create this file with the text 'ok' (to test read-only and mounts)")
	)
	flag.Parse()

	if *check != "" {
		os.Exit(healthCheck(*check))
	}
	if *say != "" {
		fmt.Println(*say)
	}
	if *sayErr != "" {
		fmt.Fprintln(os.Stderr, *sayErr)
	}
	if *printEnv {
		env := os.Environ()
		sort.Strings(env)
		for _, e := range env {
			fmt.Println(e)
		}
	}
	if *writeFile != "" {
		if err := os.WriteFile(*writeFile, []byte("ok"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(3)
		}
		fmt.Println("wrote", *writeFile)
	}
	var hog [][]byte
	for i := 0; i < *allocMiB; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			if j%4096 == 0 {
				b[j] = 1
			}
		}
		hog = append(hog, b)
	}
	if *allocMiB > 0 {
		fmt.Printf("allocated %d MiB\n", len(hog))
	}
	if *listen != "" {
		go serve(*listen, *version, *unhealthy)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	var exit <-chan time.Time
	if *exitCode >= 0 {
		exit = time.After(*after)
	}
	for {
		select {
		case <-exit:
			os.Exit(*exitCode)
		case s := <-signals:
			if *ignore {
				fmt.Println("ignoring", s)
				continue
			}
			fmt.Println("received", s)
			time.Sleep(*termDelay)
			os.Exit(0)
		}
	}
}

func serve(addr, version string, unhealthy bool) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "%s %s\n", version, host)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	fmt.Println("listening on", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
}

func healthCheck(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}
