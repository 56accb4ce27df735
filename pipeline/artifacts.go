package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// An artifact is a directory <artifact dir>/<name>/ holding the uploaded paths at their
// workspace paths. Artifacts pass files from a step to the steps that need it as GitHub
// Actions' upload-artifact and download-artifact do: by name, as they were when the
// uploading step succeeded.

// ArtifactRecord is an artifact a step uploaded (Step.Upload).
type ArtifactRecord struct {
	// Name is the artifact's name, its expressions replaced.
	Name string `json:"name"`
	// Paths are the workspace paths it holds, as the step named them.
	Paths []string `json:"paths"`
	// Files and Bytes count its regular files and their size.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Dir is where its files are, under the directory of WithArtifactDir; "" when the run
	// was not given one (the artifact was removed with the run).
	Dir string `json:"dir,omitempty"`
}

// artifactEntry is an uploaded artifact of a run.
type artifactEntry struct {
	by  string // the node that uploaded it
	rec ArtifactRecord
}

// upload copies the paths of the step's Upload into the run's artifacts.
func (ru *run) upload(n *node, step *Step) error {
	u := step.Upload
	if !artifactNamePattern.MatchString(u.Name) {
		return fmt.Errorf("upload: artifact name %s must be letters, digits, '.', '-' and '_', at most 64 bytes", quoteShort(u.Name))
	}
	ru.artMu.Lock()
	if e, dup := ru.artifacts[u.Name]; dup {
		ru.artMu.Unlock()
		return fmt.Errorf("upload: artifact %q was uploaded by %s already; give each its own name, such as with ${{ matrix.<key> }}", u.Name, e.by)
	}
	if ru.artifacts == nil {
		ru.artifacts = map[string]*artifactEntry{}
	}
	e := &artifactEntry{by: n.name, rec: ArtifactRecord{Name: u.Name, Paths: slices.Clone(u.Paths)}}
	ru.artifacts[u.Name] = e // claimed; removed again if the copy fails
	ru.artMu.Unlock()
	err := ru.copyArtifact(e, u.Paths)
	if err != nil {
		ru.artMu.Lock()
		delete(ru.artifacts, u.Name)
		ru.artMu.Unlock()
		return err
	}
	rec := e.rec
	n.rec.Artifact = &rec
	ru.log(n, "artifact %s: uploaded %s (%d files, %d bytes)", u.Name, strings.Join(u.Paths, ", "), rec.Files, rec.Bytes)
	return nil
}

func (ru *run) copyArtifact(e *artifactEntry, paths []string) error {
	dir := filepath.Join(ru.artDir, e.rec.Name)
	if err := os.MkdirAll(ru.artDir, 0o700); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	ws, err := os.OpenRoot(ru.ws)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer ws.Close()
	dst, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer dst.Close()
	for _, p := range paths {
		rel, err := workspacePath(p)
		if err != nil {
			return fmt.Errorf("upload %s: %w", p, err)
		}
		if _, err := ws.Lstat(rel); err != nil {
			return fmt.Errorf("upload %s: not in the workspace: %w", p, err)
		}
		if d := path.Dir(rel); d != "." {
			if err := dst.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("upload %s: %w", p, err)
			}
		}
		if err := copyTree(ws, rel, dst, rel); err != nil {
			return fmt.Errorf("upload %s: %w", p, err)
		}
	}
	err = fs.WalkDir(dst.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			e.rec.Files++
			e.rec.Bytes += info.Size()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if ru.keepArtifacts() {
		e.rec.Dir = dir
	}
	return nil
}

// keepArtifacts reports whether the run's artifacts outlive it (WithArtifactDir).
func (ru *run) keepArtifacts() bool {
	return !strings.HasPrefix(ru.artDir, ru.scratch+string(filepath.Separator))
}

// download copies the artifacts the step names into the workspace, replacing what is at
// their paths.
func (ru *run) download(n *node, step *Step) error {
	for _, name := range step.Download {
		ru.artMu.Lock()
		e := ru.artifacts[name]
		ru.artMu.Unlock()
		if e == nil || !ru.needsNode(n.def.Name, e.by) {
			return fmt.Errorf("download: no artifact %s among those the steps this one needs uploaded%s", quoteShort(name), ru.artifactNames(n))
		}
		if err := ru.restoreArtifact(e); err != nil {
			return fmt.Errorf("download %s: %w", name, err)
		}
		ru.log(n, "artifact %s: downloaded %s", name, strings.Join(e.rec.Paths, ", "))
	}
	return nil
}

// needsNode reports whether step needs, directly or not, the step of the node named by.
func (ru *run) needsNode(step, by string) bool {
	var target string
	for _, m := range ru.nodes {
		if m.name == by {
			target = m.def.Name
		}
	}
	seen := map[string]bool{}
	var visit func(string) bool
	visit = func(s string) bool {
		for _, need := range ru.p.Steps[ru.index[s]].Needs {
			if need == target {
				return true
			}
			if !seen[need] {
				seen[need] = true
				if visit(need) {
					return true
				}
			}
		}
		return false
	}
	return visit(step)
}

// artifactNames lists, for an error, the artifacts the node could download.
func (ru *run) artifactNames(n *node) string {
	ru.artMu.Lock()
	defer ru.artMu.Unlock()
	var names []string
	for name, e := range ru.artifacts {
		if ru.needsNode(n.def.Name, e.by) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return " (they uploaded none)"
	}
	slices.Sort(names)
	return " (there are " + strings.Join(names, ", ") + ")"
}

func (ru *run) restoreArtifact(e *artifactEntry) error {
	src, err := os.OpenRoot(filepath.Join(ru.artDir, e.rec.Name))
	if err != nil {
		return err
	}
	defer src.Close()
	ws, err := os.OpenRoot(ru.ws)
	if err != nil {
		return err
	}
	defer ws.Close()
	for _, p := range e.rec.Paths {
		rel, err := workspacePath(p)
		if err != nil {
			return err
		}
		if err := ws.RemoveAll(rel); err != nil {
			return err
		}
		if d := path.Dir(rel); d != "." {
			if err := ws.MkdirAll(d, 0o777); err != nil {
				return err
			}
		}
		if err := copyTree(src, rel, ws, rel); err != nil {
			return err
		}
	}
	return nil
}

// hashFiles is GitHub Actions' hashFiles: the hex SHA-256 of the SHA-256 digests of the
// regular files of the workspace that match any of the patterns, in the order of their
// paths; "" when none does. Patterns are relative to the workspace; "**" matches any number
// of directories, and a pattern that starts with "!" excludes what it matches.
func hashFiles(ws string, patterns []string) (string, error) {
	root, err := os.OpenRoot(ws)
	if err != nil {
		return "", err
	}
	defer root.Close()
	var include, exclude []string
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		rel, err := workspacePath(strings.TrimPrefix(p, "./"))
		if err != nil {
			return "", fmt.Errorf("pattern %s: %w", quoteShort(p), err)
		}
		if _, err := path.Match(strings.ReplaceAll(rel, "**", "*"), ""); err != nil {
			return "", fmt.Errorf("pattern %s: %w", quoteShort(p), err)
		}
		if neg {
			exclude = append(exclude, rel)
		} else {
			include = append(include, rel)
		}
	}
	var files []string
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		match := func(ps []string) bool {
			return slices.ContainsFunc(ps, func(p string) bool { return globMatch(p, name) })
		}
		if match(include) && !match(exclude) {
			files = append(files, name)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", nil
	}
	all := sha256.New()
	for _, name := range files {
		f, err := root.Open(name)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
		all.Write(h.Sum(nil))
	}
	return hex.EncodeToString(all.Sum(nil)), nil
}

// globMatch matches a slash-separated name against a pattern of path.Match's, where a
// segment "**" matches any number of segments.
func globMatch(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(ps, ns []string) bool {
	for len(ps) > 0 {
		if ps[0] == "**" {
			for i := 0; i <= len(ns); i++ {
				if matchSegments(ps[1:], ns[i:]) {
					return true
				}
			}
			return false
		}
		if len(ns) == 0 {
			return false
		}
		if ok, err := path.Match(ps[0], ns[0]); err != nil || !ok {
			return false
		}
		ps, ns = ps[1:], ns[1:]
	}
	return len(ns) == 0
}
