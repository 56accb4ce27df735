// Package hub is a multi-tenant registry, an image hub with an app store, built on the
// embeddable registry server ([github.com/opendao/dao/registry/server]): projects
// (tenants) that own repositories, users with roles in them, robot accounts, the Docker
// token authentication flow, per-project storage quotas, a catalog of what each caller
// may see, and a JSON API for an app store page and for management. A product embeds
// [Hub.Handler] in its HTTP server, or runs [ListenAndServe] from a [FileConfig].
//
//	h, err := hub.New(ctx, hub.Config{Root: "/var/lib/dao/hub", URL: "https://hub.example"})
//	if err != nil {
//		return err
//	}
//	defer h.Close()
//	_ = h.CreateUser(ctx, hub.User{Name: "alice"}, "correct-horse")
//	_ = h.CreateProject(ctx, hub.Project{Name: "team-a", Quota: 10 << 30})
//	_ = h.AddMember(ctx, "team-a", "alice", hub.RoleDeveloper)
//	_, secret, _ := h.CreateRobot(ctx, hub.Robot{Name: "ci",
//		Permissions: []hub.Permission{{Repository: "team-a/**", Actions: []string{"pull", "push"}}}})
//	return http.ListenAndServe(":5000", h.Handler()) // docker login hub.example -u alice
//
// # Projects, roles and robots
//
// The first component of a repository's name is its project: "team-a/app" is in
// project "team-a"; a repository outside every project is nobody's (not even a system
// admin's, who must create the project first). A public project may be pulled by anyone,
// anonymous callers too; a private one by its members only. Members have Harbor's roles:
// [RoleGuest] pulls, [RoleDeveloper] pulls and pushes, [RoleMaintainer] deletes too,
// [RoleAdmin] also manages the project's members and robots. A [User] with SystemAdmin
// may do everything. A [Robot] has a secret (told once, by [Hub.CreateRobot]; the hub
// keeps its hash) and may do only what its [Permission]s list, on the repositories
// their patterns name. Passwords are kept as bcrypt hashes. Everything is kept in hub.db,
// a bbolt database under the root, written in one transaction per change.
//
// # Authentication
//
// A request to /v2/ without credentials that needs more than a pull of a public project
// is answered 401 with a challenge, as the distribution registry does:
//
//	WWW-Authenticate: Bearer realm="https://hub.example/token",service="dao-hub",scope="repository:team-a/app:pull,push"
//
// The client asks the token endpoint, GET /token?service=dao-hub&scope=... with basic
// auth (a user's password or a robot's secret; none for anonymous), or POST /token with
// the OAuth2 password or refresh_token grant, and gets {"token", "access_token",
// "expires_in", "issued_at"} (and a "refresh_token" for offline_token=true or
// access_type=offline): an ES256 JWT whose claims are the distribution token spec's (iss,
// sub, aud, exp, nbf, iat, jti, access), granting what was asked intersected with what
// the caller may do, never more. The Authorizer checks a token's signature, algorithm,
// key, audience, issuer and times (30 seconds of leeway), that its access covers the
// request, and that its subject still exists and may still do it (a member removed loses
// access at once); a token that grants too little gets a new challenge
// (error="insufficient_scope"). Basic auth on /v2/ is accepted too, for clients that send
// it. An authenticated caller who may not do something is answered 403 DENIED.
//
// # Quotas
//
// A project's quota bounds the bytes its repositories hold, each blob and manifest
// counted once however many of its repositories link it. The hub's [server.Quota]
// refuses a blob or manifest that would go past it, before the server stores it, with a
// [QuotaError] ("project team-a: quota of 10 MiB exceeded: 9.5 MiB used, this push adds
// 2 MiB") that the server answers 403 DENIED; admitted pushes reserve their size until
// they are linked, so concurrent pushes cannot together go past. Since the server asks
// the quota only at an upload's commit, Handler also bounds each upload session: a chunk
// whose length would take it past what the quota leaves is refused DENIED before it is
// read, and a streamed one is cut off there. Usage follows the
// server's push and delete events and the hub's garbage collections, is kept in hub.db
// (written in the background), and is checked against the store and completed from its
// manifests at start ([Hub.Recount] does it again).
//
// # Garbage collection
//
// [Config].GC runs the online collection of package gc every Interval, and
// [Hub.CollectGarbage] runs one when asked, while pushes and pulls go on: it deletes the
// blobs no manifest references once the grace period (an hour by default) has passed
// and, with gc.WithDeleteUntagged, first unlinks the manifests no tag names. The hub's
// registry server enters the collector's fence at each manifest put, so that no push
// loses a blob it checked. Each deletion reaches the usage at once: a project's usage
// drops by a manifest unlinked from its repository (unless another of its repositories
// links it) and by a blob deleted from the store. A blob is counted in each project that
// links it, as above, and stays counted while it is stored: a layer that another
// project's image still references is not deleted, and the project that deleted its own
// image keeps it linked (and counted) until it deletes the blob itself (DELETE
// /v2/<repo>/blobs/<digest>) or the other image goes too. Deleting a tag frees nothing
// by itself: the manifest stays until it is deleted or a collection with
// gc.WithDeleteUntagged unlinks it.
//
// # Notifications
//
// [Config].Events is called after each push, pull and delete through the hub with an
// [Event]: the server's event, its project, and its actor, the user or robot account
// that did it ("" for an anonymous pull). A [server.Notifier]'s Send given the event's
// server.Event sends distribution-style webhooks with that actor; a FileConfig's
// notifications section does this. The webhook's target.repository names the project as
// its first component; the envelope has no field of its own for it.
//
// # Proxy cache projects
//
// [Config].ProxyCaches binds projects to upstream registries, as Harbor's proxy cache
// projects: a pull of hub.example/dockerhub/library/nginx:1.27 from a project
// "dockerhub" that caches https://registry-1.docker.io is served from the upstream's
// library/nginx:1.27 the first time ([server.Mirror]: verified, stored under the same
// digests, a tag asked again after the TTL, what is stored served while the upstream is
// down) and from the hub's store after. Pushes and deletes are refused 405
// UNSUPPORTED; the project's members, robots and public flag decide who pulls; what it
// caches counts in its usage, but no pull is refused for its quota. The project is
// created as any other. (Harbor also prefixes library/ to Docker Hub's single-name
// images; the hub does not: pull dockerhub/library/nginx.)
//
// # The catalog and the app store
//
// /v2/_catalog lists only the repositories the caller may pull. The JSON API under
// /api/v1/ serves an app store page: GET /api/v1/projects (those the caller may see),
// GET /api/v1/projects/{p}/repositories (each repository's tags and, of its latest
// image, the org.opencontainers.image title, description, source and version
// annotations, or config labels, as [ImageInfo]). System admins create projects, users
// and quotas there (POST /api/v1/projects, POST /api/v1/users, PUT
// /api/v1/projects/{p}/quota), project admins set members (PUT and DELETE
// /api/v1/projects/{p}/members/{user}) and create robots within their projects (POST
// /api/v1/robots, which answers the secret once).
//
// # Goroutines
//
// Hub serves each request on the goroutine that calls its handler. It starts one
// goroutine, which writes the usage's changes to hub.db off the requests' path (a crash
// may lose the last of them; the count at start restores what manifests refer to), and
// with a GC Interval one more, which runs the collections; Close stops both, the
// collection first (interrupting one in progress), the writer once it has written what
// is left. Config.Events is called on the requests' goroutines.
package hub
