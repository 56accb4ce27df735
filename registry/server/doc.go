// Package server is an embeddable OCI registry: an http.Handler of the OCI distribution
// API 1.1 over a [storage.Store], which a product mounts in its own HTTP server or serves
// with [ListenAndServe]. It shares the image model of the client packages
// ([github.com/opendao/dao/registry/oci]) and, like them, imports no containerd.
//
//	st, err := storage.OpenFS("/var/lib/dao/hub")
//	if err != nil {
//		return err
//	}
//	srv, err := server.New(st, server.WithRateLimit(100, 200))
//	if err != nil {
//		return err
//	}
//	return http.ListenAndServe("127.0.0.1:5000", srv)
//
// or, from a configuration file (see [Config]):
//
//	cfg, err := server.LoadConfig("hub.yaml")
//	if err != nil {
//		return err
//	}
//	return server.ListenAndServe(ctx, cfg, nil)
//
// # The API
//
// Server answers the /v2/ ping; blobs, GET and HEAD (with a single Range, 206 and 416) and
// DELETE; uploads: monolithic (POST ?digest=), POST then PUT, chunked PATCHes whose
// Content-Range must start where the upload ends (416 otherwise, with the Range to resume
// from), streamed PATCHes, status GET, DELETE, and cross-repository mounts (?mount=&from=)
// which, for a blob the source lacks, open an upload session (202) as the 1.1 spec asks;
// manifests by tag and by digest, GET, HEAD, PUT (with ?tag= parameters, answered with
// OCI-Tag) and DELETE, kept byte for byte with the media type they were pushed with (OCI's
// and Docker schema 2's manifests and indexes), checked on PUT (JSON of schema version 2, a
// media type that agrees with the document, no more than 4 MiB by default, every blob and
// manifest it refers to in the repository with its size, but nondistributable layers), and
// answered with OCI-Subject when they have a subject; tag deletion; tags/list and _catalog
// with n and last and a Link to the next page; the referrers API with its artifactType
// filter and OCI-Filters-Applied. Digests are sha256 or sha512, and content is verified
// before anything is linked. Repository names must match the spec's grammar
// ([ValidateRepository]): no "..", no empty or "." component, no upper case. Every error is
// answered in the spec's JSON format with its codes ({"errors":[{"code":"BLOB_UNKNOWN",
// "message":...}]}). It passes the OCI conformance suite with every area on (the test
// TestConformance runs it).
//
// Blobs are streamed both ways and never held in memory; only manifests are read whole.
//
// # Seams for a product
//
// A multi-tenant product builds on these options; each has a default that needs nothing:
//
//   - [WithAuthorizer]: an [Authorizer] is asked, for every request, about the [Access]es
//     it needs ({Type: "repository", Name: "team/app", Actions: ["pull"]}, push, delete,
//     and for the catalog {registry, catalog, *}), and allows, challenges (a
//     [ChallengeError], 401 with its WWW-Authenticate) or denies (403 DENIED). [BasicAuth]
//     is a small one for tests; a token service issues Bearer challenges from the scopes
//     ([Access.Scope]). The default allows everything.
//   - [WithCatalogFilter] lists only the repositories a caller may see.
//   - [WithQuota]: a [Quota] admits or refuses, with the size, each blob before its upload
//     is committed and each manifest before it is stored; a refusal stores nothing.
//   - [WithEvents]: an [EventFunc] hears of every push, pull and delete.
//   - [WithRateLimit] and [WithRateLimitKey]: a token bucket per client
//     (golang.org/x/time/rate); past it, 429 TOOMANYREQUESTS with Retry-After.
//   - [WithRateLimitClients] bounds the table of buckets (least recently seen forgotten).
//   - [WithMaxUploads] bounds the upload sessions open per repository and in all (429).
//   - [WithFence] with package gc: collections run online, beside pushes; [Config]'s gc
//     runs them periodically.
//   - [WithMirror]: a pull-through cache of an upstream registry ([NewMirror]).
//   - [NewNotifier]: webhooks of the events, queued, batched and retried ([Endpoint]).
//   - [WithMaxBlobSize] cancels an upload that grows past a size, before the disk fills.
//   - [WithAutomaticMount](false) stops mounts without a source, which let anyone who knows
//     a digest read it from any repository; a multi-tenant server wants it off.
//
// Storage is behind [storage.Store], and a collector of unreferenced content runs online
// beside pushes through [storage.Collector]: its package documentation says how.
//
// # Goroutines
//
// Server starts none; it serves each request on the goroutine that calls ServeHTTP (a
// Mirror fetches from its upstream on it too). A Notifier runs a goroutine per endpoint
// until Close. ListenAndServe runs an http.Server, and the Config's collections
// (gc.Run) and notifier, until its context is done, and returns once all have stopped.
package server
