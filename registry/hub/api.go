package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

// The annotations of an image that an app store shows, from the OCI image spec.
const (
	AnnotationTitle       = ocispec.AnnotationTitle
	AnnotationDescription = ocispec.AnnotationDescription
	AnnotationSource      = ocispec.AnnotationSource
	AnnotationVersion     = ocispec.AnnotationVersion
)

// ProjectInfo is a project as the JSON API lists it.
type ProjectInfo struct {
	// Name is the project's name.
	Name string `json:"name"`
	// Public tells whether anyone may pull.
	Public bool `json:"public"`
	// Role is the caller's role in it, "" if none.
	Role Role `json:"role,omitempty"`
	// Quota and Used are its quota (0 for none) and usage in bytes, for its members and
	// system admins only.
	Quota *int64 `json:"quota,omitempty"`
	Used  *int64 `json:"used,omitempty"`
}

// RepositoryInfo is a repository as the app store lists it.
type RepositoryInfo struct {
	// Name is the repository's full name, "team-a/app".
	Name string `json:"name"`
	// Tags are its tags in lexical order.
	Tags []string `json:"tags"`
	// Latest describes the manifest of the tag "latest", or else of the greatest tag in
	// version order; nil for a repository without tags.
	Latest *ImageInfo `json:"latest,omitempty"`
}

// ImageInfo is what an app store shows of an image: its manifest and its description.
type ImageInfo struct {
	// Tag is the tag it is listed under.
	Tag string `json:"tag"`
	// Digest and MediaType are the manifest's (an index's, for a multi-platform image).
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// Title, Description, Source and Version are the org.opencontainers.image.*
	// annotations of the manifest (for an index, its own, else its first image's), or
	// else the labels of the image's config of the same names.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Source      string `json:"source,omitempty"`
	Version     string `json:"version,omitempty"`
	// Annotations are the manifest's annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels are the labels of the image's config.
	Labels map[string]string `json:"labels,omitempty"`
	// Platforms are the platforms of an index's images, "os/arch[/variant]".
	Platforms []string `json:"platforms,omitempty"`
}

// apiHandler serves /api/v1/.
func (h *Hub) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/user", h.api(h.apiWhoAmI))
	mux.HandleFunc("GET /api/v1/projects", h.api(h.apiProjects))
	mux.HandleFunc("POST /api/v1/projects", h.api(h.apiCreateProject))
	mux.HandleFunc("GET /api/v1/projects/{project}", h.api(h.apiProject))
	mux.HandleFunc("GET /api/v1/projects/{project}/repositories", h.api(h.apiRepositories))
	mux.HandleFunc("PUT /api/v1/projects/{project}/members/{user}", h.api(h.apiPutMember))
	mux.HandleFunc("DELETE /api/v1/projects/{project}/members/{user}", h.api(h.apiDeleteMember))
	mux.HandleFunc("PUT /api/v1/projects/{project}/quota", h.api(h.apiPutQuota))
	mux.HandleFunc("POST /api/v1/users", h.api(h.apiCreateUser))
	mux.HandleFunc("POST /api/v1/robots", h.api(h.apiCreateRobot))
	mux.HandleFunc("/api/", h.api(func(*http.Request, principal) (any, error) {
		return nil, fmt.Errorf("%w: no such endpoint", ErrNotFound)
	}))
	return mux
}

// maxAPIBody bounds the JSON body of an API request.
const maxAPIBody = 1 << 20

// api adapts an endpoint: it identifies the caller (basic auth or a token of the hub),
// and writes the value or the error as JSON.
func (h *Hub) api(fn func(r *http.Request, who principal) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := h.identify(r)
		var v any
		err := id.err
		if err == nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
			v, err = fn(r, id.who)
		}
		if err != nil {
			status, code := http.StatusInternalServerError, "UNKNOWN"
			switch {
			case errdefs.IsUnauthorized(err):
				status, code = http.StatusUnauthorized, "UNAUTHORIZED"
				w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", h.cfg.Service))
			case errdefs.IsPermissionDenied(err):
				status, code = http.StatusForbidden, "DENIED"
			case errdefs.IsNotFound(err):
				status, code = http.StatusNotFound, "NOT_FOUND"
			case errdefs.IsAlreadyExists(err):
				status, code = http.StatusConflict, "EXISTS"
			case errdefs.IsInvalidArgument(err):
				status, code = http.StatusBadRequest, "INVALID"
			}
			v = map[string]any{"errors": []map[string]string{{"code": code, "message": err.Error()}}}
			writeJSON(w, status, v)
			return
		}
		status := http.StatusOK
		if r.Method == http.MethodPost {
			status = http.StatusCreated
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, status, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", ErrInvalidOption, err)
	}
	return nil
}

// visibleProject reports whether who may see project p: public, a member, a robot with a
// permission in it, a system admin.
func visibleProject(p *Project, who principal) bool {
	if p.Public || who.admin {
		return true
	}
	switch who.kind {
	case kindUser:
		_, ok := p.Members[who.name]
		return ok
	case kindRobot:
		for _, perm := range who.robot.Permissions {
			if perm.project() == p.Name {
				return true
			}
		}
	}
	return false
}

// projectAdmin refuses who unless it is a system admin or an admin of project.
func projectAdmin(st *state, who principal, project string) error {
	if who.admin {
		return nil
	}
	if p, ok := st.Projects[project]; ok && who.kind == kindUser && p.Members[who.name] == RoleAdmin {
		return nil
	}
	return fmt.Errorf("%w: %s is not an admin of project %s", ErrDenied, who, project)
}

func systemAdmin(who principal) error {
	if !who.admin {
		if who.kind == kindAnonymous {
			return fmt.Errorf("%w: log in as a system admin", ErrUnauthenticated)
		}
		return fmt.Errorf("%w: %s is not a system admin", ErrDenied, who)
	}
	return nil
}

func (h *Hub) projectInfo(p *Project, who principal) ProjectInfo {
	pi := ProjectInfo{Name: p.Name, Public: p.Public}
	if who.kind == kindUser {
		pi.Role = p.Members[who.name]
	}
	if who.admin || pi.Role != "" {
		q, u := p.Quota, h.usage.used(p.Name)
		pi.Quota, pi.Used = &q, &u
	}
	return pi
}

func (h *Hub) apiWhoAmI(_ *http.Request, who principal) (any, error) {
	if who.kind == kindAnonymous {
		return nil, fmt.Errorf("%w: anonymous", ErrUnauthenticated)
	}
	kind := "user"
	if who.kind == kindRobot {
		kind = "robot"
	}
	return map[string]any{"name": who.name, "kind": kind, "systemAdmin": who.admin}, nil
}

func (h *Hub) apiProjects(_ *http.Request, who principal) (any, error) {
	st := h.state()
	out := []ProjectInfo{}
	for _, p := range h.Projects() {
		if visibleProject(st.Projects[p.Name], who) {
			out = append(out, h.projectInfo(st.Projects[p.Name], who))
		}
	}
	return out, nil
}

// projectFor returns a project the caller may see; one it may not is not found (and for
// an anonymous caller, whether it exists or not, asks for credentials), so that the
// names of private projects do not leak.
func (h *Hub) projectFor(name string, who principal) (*Project, error) {
	p, ok := h.state().Projects[name]
	if !ok || !visibleProject(p, who) {
		if who.kind == kindAnonymous {
			return nil, fmt.Errorf("%w: log in to see project %s", ErrUnauthenticated, name)
		}
		return nil, fmt.Errorf("%w: project %s", ErrNotFound, name)
	}
	return p, nil
}

func (h *Hub) apiProject(r *http.Request, who principal) (any, error) {
	p, err := h.projectFor(r.PathValue("project"), who)
	if err != nil {
		return nil, err
	}
	return h.projectInfo(p, who), nil
}

func (h *Hub) apiRepositories(r *http.Request, who principal) (any, error) {
	p, err := h.projectFor(r.PathValue("project"), who)
	if err != nil {
		return nil, err
	}
	return h.repositories(r.Context(), p.Name, who)
}

// Repositories lists the repositories of a project with their tags and the description
// of their latest image, as the app store API does for a system admin.
func (h *Hub) Repositories(ctx context.Context, project string) ([]RepositoryInfo, error) {
	return h.repositories(ctx, project, principal{kind: kindUser, admin: true})
}

// repositories lists the repositories of a project that who may pull.
func (h *Hub) repositories(ctx context.Context, project string, who principal) ([]RepositoryInfo, error) {
	repos, err := h.store.Repositories(ctx)
	if err != nil {
		return nil, err
	}
	st := h.state()
	out := []RepositoryInfo{}
	for _, repo := range repos {
		if projectOf(repo) != project || !containsAction(allowed(st, who, repo), server.ActionPull) {
			continue
		}
		ri, err := h.repositoryInfo(ctx, repo)
		if err != nil {
			return nil, err
		}
		out = append(out, ri)
	}
	return out, nil
}

func (h *Hub) repositoryInfo(ctx context.Context, repo string) (RepositoryInfo, error) {
	ri := RepositoryInfo{Name: repo, Tags: []string{}}
	tags, err := h.store.Tags(ctx, repo)
	if err != nil && !errors.Is(err, storage.ErrNameUnknown) {
		return ri, err
	}
	if tags != nil {
		ri.Tags = tags
	}
	tag := latestTag(ri.Tags)
	if tag == "" {
		return ri, nil
	}
	d, err := h.store.ResolveTag(ctx, repo, tag)
	if err != nil {
		return ri, nil // untagged meanwhile
	}
	m, err := h.store.Manifest(ctx, repo, d)
	if err != nil {
		return ri, nil
	}
	img := &ImageInfo{Tag: tag, Digest: d, MediaType: m.Descriptor.MediaType}
	ri.Latest = img
	dm, err := oci.DecodeManifest(m.Descriptor.MediaType, m.Raw)
	if err != nil {
		return ri, nil
	}
	if dm.Index != nil {
		img.Annotations = dm.Index.Annotations
		for _, c := range dm.Index.Manifests {
			if c.Platform != nil {
				pl := c.Platform.OS + "/" + c.Platform.Architecture
				if c.Platform.Variant != "" {
					pl += "/" + c.Platform.Variant
				}
				img.Platforms = append(img.Platforms, pl)
			}
		}
		for _, c := range dm.Index.Manifests {
			if !oci.IsManifestType(c.MediaType) || (c.Platform != nil && c.Platform.OS == "unknown") {
				continue
			}
			cm, err := h.store.Manifest(ctx, repo, c.Digest)
			if err != nil {
				break
			}
			if dm, err = oci.DecodeManifest(cm.Descriptor.MediaType, cm.Raw); err != nil {
				return ri, nil
			}
			break
		}
	}
	if dm.Image != nil {
		if img.Annotations == nil {
			img.Annotations = dm.Image.Annotations
		} else {
			for k, v := range dm.Image.Annotations {
				if _, ok := img.Annotations[k]; !ok {
					img.Annotations[k] = v
				}
			}
		}
		img.Labels = h.configLabels(ctx, dm.Image.Config)
	}
	pick := func(key string) string {
		if v := img.Annotations[key]; v != "" {
			return v
		}
		return img.Labels[key]
	}
	img.Title, img.Description = pick(AnnotationTitle), pick(AnnotationDescription)
	img.Source, img.Version = pick(AnnotationSource), pick(AnnotationVersion)
	return ri, nil
}

// maxConfigRead bounds the image config the app store reads.
const maxConfigRead = 1 << 20

// configLabels reads the labels of an image config, nil if it cannot.
func (h *Hub) configLabels(ctx context.Context, cfg ocispec.Descriptor) map[string]string {
	if cfg.Size > maxConfigRead {
		return nil
	}
	rc, _, err := h.store.OpenBlob(ctx, cfg.Digest)
	if err != nil {
		return nil
	}
	defer rc.Close()
	var c struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	if json.NewDecoder(io.LimitReader(rc, maxConfigRead)).Decode(&c) != nil {
		return nil
	}
	return c.Config.Labels
}

// latestTag returns "latest" if it is among tags, else the greatest in version order.
func latestTag(tags []string) string {
	if slices.Contains(tags, "latest") {
		return "latest"
	}
	best := ""
	for _, t := range tags {
		if best == "" || versionLess(best, t) {
			best = t
		}
	}
	return best
}

// versionLess orders tags as versions: runs of digits by value, the rest bytewise.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// projectRequest is the body of POST /api/v1/projects.
type projectRequest struct {
	Name   string `json:"name"`
	Public bool   `json:"public"`
	Quota  int64  `json:"quota"`
}

func (h *Hub) apiCreateProject(r *http.Request, who principal) (any, error) {
	if err := systemAdmin(who); err != nil {
		return nil, err
	}
	var req projectRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := h.CreateProject(r.Context(), Project{Name: req.Name, Public: req.Public, Quota: req.Quota}); err != nil {
		return nil, err
	}
	p := h.state().Projects[req.Name]
	return h.projectInfo(p, who), nil
}

func (h *Hub) apiPutMember(r *http.Request, who principal) (any, error) {
	project := r.PathValue("project")
	if err := projectAdmin(h.state(), who, project); err != nil {
		return nil, err
	}
	var req struct {
		Role Role `json:"role"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return nil, h.AddMember(r.Context(), project, r.PathValue("user"), req.Role)
}

func (h *Hub) apiDeleteMember(r *http.Request, who principal) (any, error) {
	project := r.PathValue("project")
	if err := projectAdmin(h.state(), who, project); err != nil {
		return nil, err
	}
	return nil, h.RemoveMember(r.Context(), project, r.PathValue("user"))
}

func (h *Hub) apiPutQuota(r *http.Request, who principal) (any, error) {
	if err := systemAdmin(who); err != nil {
		return nil, err
	}
	var req struct {
		Quota int64 `json:"quota"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return nil, h.SetQuota(r.Context(), r.PathValue("project"), req.Quota)
}

func (h *Hub) apiCreateUser(r *http.Request, who principal) (any, error) {
	if err := systemAdmin(who); err != nil {
		return nil, err
	}
	var req struct {
		Name        string `json:"name"`
		Password    string `json:"password"`
		SystemAdmin bool   `json:"systemAdmin"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	u := User{Name: req.Name, SystemAdmin: req.SystemAdmin}
	if err := h.CreateUser(r.Context(), u, req.Password); err != nil {
		return nil, err
	}
	return u, nil
}

// apiCreateRobot creates a robot account: a system admin may give it any permission, a
// project admin permissions within the projects it administers.
func (h *Hub) apiCreateRobot(r *http.Request, who principal) (any, error) {
	var req struct {
		Name        string       `json:"name"`
		Description string       `json:"description"`
		Permissions []Permission `json:"permissions"`
		ExpiresAt   time.Time    `json:"expiresAt"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	st := h.state()
	if who.kind == kindAnonymous {
		return nil, fmt.Errorf("%w: log in to create a robot account", ErrUnauthenticated)
	}
	for _, p := range req.Permissions {
		if err := projectAdmin(st, who, p.project()); err != nil {
			return nil, err
		}
	}
	name, secret, err := h.CreateRobot(r.Context(), Robot{Name: req.Name, Description: req.Description, Permissions: req.Permissions, ExpiresAt: req.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return map[string]string{"name": name, "secret": secret}, nil
}
