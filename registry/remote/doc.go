// Package remote is a client of the OCI distribution API: it resolves, fetches, pushes,
// copies, lists and deletes images and artifacts in registries. It imports no containerd:
// [github.com/opendao/dao/registry/ctrd] puts what it fetches into containerd.
//
// [NewClient] returns a [Client]. References are normalised as the ecosystem does
// (name.ParseReference: "busybox" is docker.io/library/busybox:latest). [Client.Resolve]
// turns a tag into a descriptor, [Client.Manifest] and [Client.FetchManifest] read OCI and
// Docker schema 2 manifests and indexes (oci.SelectPlatform picks a platform's manifest),
// and [Client.FetchBlob] streams a blob that is verified as it is read: the last Read
// returns io.EOF only when digest and size match, and oci.ErrDigestMismatch or
// oci.ErrSizeMismatch otherwise, so bad bytes are never returned as good. Downloads resume
// with Range after a broken connection, can run as parallel ranges, and are shared by
// concurrent callers asking for the same blob; [Client.StreamBlob] reads a blob once, from
// an offset, for a caller that verifies it itself (a pull into a content store). Both are
// one fetch engine: a reader of a range of the blob that resumes where an answer broke and
// goes on to the next mirror; a download's parallel ranges leave a failing mirror together.
// [Client.Push] uploads an image or index (blobs monolithic or chunked, cross-repository
// mounts, then the manifest); [Client.Copy] copies between registries, [Client.PullLayout]
// and [Client.PushLayout] to and from OCI layouts; [Client.Tags], [Client.Catalog],
// [Client.Delete] and [Client.Referrers] (with the tag-schema fallback) do the rest.
//
// Authentication follows the registry's challenge: anonymous, basic, or bearer tokens from
// its token server, cached per scope and refreshed before they expire; credentials come from
// [WithCredentials] or a docker config.json ([WithDockerConfig]: its "auths" and its
// credential helpers, credsStore and credHelpers). Hosts are HTTPS unless [WithHosts] says
// plain HTTP or a custom CA for one, and may have mirrors (tried in order for what their
// capabilities allow, then the upstream); registries on loopback addresses are reached as
// containerd and docker reach them, over HTTPS unverified or plain HTTP. [LoadHostsDir]
// reads containerd's hosts.toml directories (/etc/containerd/certs.d) into [WithHosts]'s
// settings. Requests are retried with exponential
// backoff and jitter on 408, 429, 5xx and broken connections, honouring Retry-After in full,
// and limited per host in rate ([WithRateLimit]) and concurrency ([WithMaxConcurrency]).
// Every response body the client reads (manifests, indexes, configs, blobs, tokens, lists)
// is watched: one that stalls or trickles below [WithSpeedLimit] (1 KiB/s over 30 s by
// default) is cut, asked for again (a blob from where it stopped, a manifest whole, with
// its digest verified again) and then from the next mirror, so a stuck mirror never holds
// a call until the caller's context ends. Manifests and indexes of more than 4 MiB are
// refused (oci.ErrTooLarge). [WithProgress] reports bytes done per blob, for progress bars.
//
//	c, err := remote.NewClient(remote.WithDockerConfig(os.ExpandEnv("$HOME/.docker/config.json")))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	desc, err := c.Push(ctx, "registry.example.com/web:1.1", img)
//	if errdefs.IsNotFound(err) { // remote.ErrNameUnknown, remote.ErrManifestUnknown, ...
//		...
//	}
//
// Errors from a registry are a *[ResponseError] (method, URL, status and the OCI error
// codes), which matches sentinels such as [ErrNotFound], [ErrUnauthorized],
// [ErrManifestUnknown] and [ErrTooManyRequests] with errors.Is. Every sentinel is of one of
// containerd's error classes (errdefs.IsNotFound, errdefs.IsUnauthorized, ...). A registry
// that cannot be reached at all gives a *[ConnectError] ([ErrUnreachable], [ErrPlainHTTP],
// [ErrUntrusted]) whose message says what to do. When a
// call fell back over mirrors, the error holds each endpoint's error, all of them seen by
// errors.Is and errors.As.
package remote
