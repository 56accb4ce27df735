package remote

import (
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/opendao/dao/clock"
)

// Option configures NewClient.
type Option func(*clientOptions) error

type clientOptions struct {
	httpClient     *http.Client
	hosts          map[string]HostConfig
	creds          map[string]Credentials
	credsFunc      CredentialsFunc
	dockerConfig   string
	dockerOptional bool
	retry          RetryPolicy
	rateLimits     map[string]rateLimit
	maxConcurrency int
	progress       func(Progress)
	clock          clock.Clock
	userAgent      string
	spoolDir       string
	rangeChunk     int64
	rangeParallel  int
	uploadChunk    int64
	speed          SpeedLimit
}

type rateLimit struct {
	rps   float64
	burst int
}

func defaultClientOptions() clientOptions {
	return clientOptions{
		retry:          DefaultRetryPolicy(),
		maxConcurrency: 16,
		clock:          clock.System(),
		userAgent:      "dao-registry/1",
		rangeChunk:     8 << 20,
		rangeParallel:  4,
		speed:          DefaultSpeedLimit(),
	}
}

// WithHTTPClient sends requests through hc. Hosts with RootCAs or SkipVerify need its
// Transport to be an *http.Transport, which the client clones for them. The default is a
// client over a clone of http.DefaultTransport with up to 32 idle connections per host.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *clientOptions) error {
		if hc == nil {
			return fmt.Errorf("%w: WithHTTPClient: nil HTTP client", ErrInvalidOption)
		}
		o.httpClient = hc
		return nil
	}
}

// WithHosts says how to reach registries, keyed by the registry's host as references name it
// ("docker.io", "127.0.0.1:5000"): mirrors, plain HTTP, certificates; the HostConfig under
// DefaultHostsKey applies to every registry without one of its own. Later calls add to and
// replace the hosts of earlier ones. LoadHostsDir reads them from containerd's hosts
// directory. The default is HTTPS to every registry, no mirror, and loopback registries as
// HostConfig says.
func WithHosts(hosts map[string]HostConfig) Option {
	return func(o *clientOptions) error {
		if err := checkHosts(hosts); err != nil {
			return err
		}
		if o.hosts == nil {
			o.hosts = make(map[string]HostConfig)
		}
		maps.Copy(o.hosts, hosts)
		return nil
	}
}

// WithCredentials authenticates to host (a registry's or a mirror's host[:port], with
// "docker.io" for Docker Hub) with cred. It wins over WithCredentialsFunc and
// WithDockerConfig. The default is anonymous access.
func WithCredentials(host string, cred Credentials) Option {
	return func(o *clientOptions) error {
		if host == "" {
			return fmt.Errorf("%w: WithCredentials: credentials for an empty host", ErrInvalidOption)
		}
		if o.creds == nil {
			o.creds = make(map[string]Credentials)
		}
		o.creds[dockerConfigHost(host)] = cred
		return nil
	}
}

// WithCredentialsFunc asks f for the credentials of hosts that WithCredentials does not
// name. It wins over WithDockerConfig. The default is anonymous access.
func WithCredentialsFunc(f CredentialsFunc) Option {
	return func(o *clientOptions) error {
		if f == nil {
			return fmt.Errorf("%w: WithCredentialsFunc: nil credentials function", ErrInvalidOption)
		}
		o.credsFunc = f
		return nil
	}
}

// WithDockerConfig reads credentials from a docker config.json for hosts that neither
// WithCredentials nor WithCredentialsFunc answer, as docker does: from the credential
// helper that credHelpers names for the host, else from that of credsStore
// (docker-credential-NAME on $PATH, run with "get" and the server URL on its standard
// input, once per host for the client's life), else from "auths". A helper that has no
// credentials for the host means "auths", then anonymous access; a helper that is missing or
// fails fails the request with a *CredentialHelperError. An empty path means
// $DOCKER_CONFIG/config.json or ~/.docker/config.json, which may be missing; a path given
// must exist. NewClient reads the file once. The default is no docker config.
func WithDockerConfig(path string) Option {
	return func(o *clientOptions) error {
		o.dockerConfig, o.dockerOptional = path, path == ""
		if path == "" {
			o.dockerConfig = defaultDockerConfig()
		}
		return nil
	}
}

// WithRetry sets how failed requests are retried. The default is DefaultRetryPolicy().
func WithRetry(p RetryPolicy) Option {
	return func(o *clientOptions) error {
		if err := p.check(); err != nil {
			return fmt.Errorf("WithRetry: %w", err)
		}
		o.retry = p
		return nil
	}
}

// WithRateLimit lets at most rps requests a second, in bursts of up to burst, go to host (a
// registry's, mirror's or token server's host[:port]). The default is no limit.
func WithRateLimit(host string, rps float64, burst int) Option {
	return func(o *clientOptions) error {
		if host == "" || rps <= 0 || burst < 1 {
			return fmt.Errorf("%w: WithRateLimit: rate limit %v/s burst %d for host %q: want a host, a positive rate and a burst of at least 1", ErrInvalidOption, rps, burst, host)
		}
		if o.rateLimits == nil {
			o.rateLimits = make(map[string]rateLimit)
		}
		o.rateLimits[host] = rateLimit{rps: rps, burst: burst}
		return nil
	}
}

// WithMaxConcurrency lets at most n requests be in flight to each host at once; a blob
// download holds its request until its body is read. The default is 16.
func WithMaxConcurrency(n int) Option {
	return func(o *clientOptions) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxConcurrency: concurrency %d, want at least 1", ErrInvalidOption, n)
		}
		o.maxConcurrency = n
		return nil
	}
}

// WithProgress calls f as blobs are fetched and pushed: with the bytes done so far and the
// total, and once more when a blob is complete. f is called from the goroutines doing the
// transfers, concurrently for different blobs; it must be quick. The default is no
// reporting.
func WithProgress(f func(Progress)) Option {
	return func(o *clientOptions) error {
		if f == nil {
			return fmt.Errorf("%w: WithProgress: nil progress function", ErrInvalidOption)
		}
		o.progress = f
		return nil
	}
}

// WithClock makes the client read time and wait through clk: token lifetimes, rate limits,
// backoff and Retry-After. The default is clock.System(); a clock.Manual runs backoff and
// Retry-After without waiting. The watchdog of WithSpeedLimit
// measures time spent reading on the system clock.
func WithClock(clk clock.Clock) Option {
	return func(o *clientOptions) error {
		if clk == nil {
			return fmt.Errorf("%w: WithClock: nil clock", ErrInvalidOption)
		}
		o.clock = clk
		return nil
	}
}

// WithUserAgent sets the User-Agent of requests. The default is "dao-registry/1".
func WithUserAgent(ua string) Option {
	return func(o *clientOptions) error {
		if ua == "" {
			return fmt.Errorf("%w: WithUserAgent: empty user agent", ErrInvalidOption)
		}
		o.userAgent = ua
		return nil
	}
}

// WithSpoolDir sets the directory where blobs being fetched are spooled, in unlinked
// temporary files, so that concurrent readers share one download and ranges can arrive out
// of order. Blobs of up to 1 MiB are spooled in memory. The default is os.TempDir().
func WithSpoolDir(dir string) Option {
	return func(o *clientOptions) error {
		if dir == "" {
			return fmt.Errorf("%w: WithSpoolDir: empty spool directory", ErrInvalidOption)
		}
		o.spoolDir = dir
		return nil
	}
}

// WithRangeDownload fetches blobs larger than two chunks of chunkSize bytes as parallel
// ranges, up to parallel at once, from registries that serve ranges; parallel 1 fetches
// every blob in one request. Interrupted requests resume with a range whatever this says.
// The default is 8 MiB chunks, 4 at once.
func WithRangeDownload(chunkSize int64, parallel int) Option {
	return func(o *clientOptions) error {
		if chunkSize < 64<<10 || parallel < 1 {
			return fmt.Errorf("%w: WithRangeDownload: range download of %d-byte chunks, %d at once: want chunks of at least 64 KiB and at least 1", ErrInvalidOption, chunkSize, parallel)
		}
		o.rangeChunk, o.rangeParallel = chunkSize, parallel
		return nil
	}
}

// WithChunkedUpload pushes blobs larger than chunkSize in chunks of chunkSize bytes (or the
// registry's OCI-Chunk-Min-Length, if larger), each of which is retried alone. The default
// (0) pushes each blob in one request.
func WithChunkedUpload(chunkSize int64) Option {
	return func(o *clientOptions) error {
		if chunkSize < 0 {
			return fmt.Errorf("%w: WithChunkedUpload: negative upload chunk size %d", ErrInvalidOption, chunkSize)
		}
		o.uploadChunk = chunkSize
		return nil
	}
}

// defaultHTTPClient is used without WithHTTPClient.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
}
