package pipeline

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
)

// A cache entry is a directory <cache dir>/<key>/ holding outputs.json (the step's outputs)
// and paths/<i>, a copy of the step's i-th cache path (a file or a directory tree; absent
// when the step left nothing there). An entry is written under a temporary name and renamed
// into place, so an entry that exists is complete.

const cacheFormat = "dao-pipeline-cache-v1"

// cacheKey returns the key of a rendered container step in the workspace ws: a digest of the
// step's definition (what it runs, not when) and of the content of its key files.
func cacheKey(ws *os.Root, env map[string]string, s *Step, inst instance) (string, error) {
	def := s.clone()
	def.Needs, def.If, def.Timeout, def.Retries, def.ContinueOnError = nil, "", 0, 0, false
	def.Matrix, def.MatrixInclude, def.MatrixExclude, def.FailFast, def.MaxParallel = nil, nil, nil, false, 0
	h := sha256.New()
	enc := json.NewEncoder(h)
	if err := enc.Encode(struct {
		Format string            `json:"format"`
		Env    map[string]string `json:"env,omitempty"`
		Step   *Step             `json:"step"`
		Matrix map[string]string `json:"matrix,omitempty"`
	}{cacheFormat, env, def, inst.values}); err != nil {
		return "", err
	}
	for _, pattern := range s.Cache.KeyFiles {
		rel, err := workspacePath(pattern)
		if err != nil {
			return "", err
		}
		matches, err := fs.Glob(ws.FS(), rel)
		if err != nil {
			return "", fmt.Errorf("key file %q: %w", pattern, err)
		}
		slices.Sort(matches)
		fmt.Fprintf(h, "pattern %q: %d files\n", pattern, len(matches))
		for _, m := range matches {
			sum, err := fileDigest(ws, m)
			if err != nil {
				return "", fmt.Errorf("key file %q: %w", m, err)
			}
			fmt.Fprintf(h, "%q %s\n", m, sum)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileDigest digests a regular file, or the names below a directory (a directory's content
// is not a key: declare its files).
func fileDigest(root *os.Root, name string) (string, error) {
	info, err := root.Stat(name)
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		return "directory", nil
	}
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cacheStore keeps cache entries under a directory.
type cacheStore struct {
	dir string
}

// restore copies the entry's paths into the workspace, replacing what is there, and returns
// the outputs saved with it. ok is false when there is no entry for key.
func (c *cacheStore) restore(ws *os.Root, key string, paths []string) (outputs map[string]string, ok bool, err error) {
	entry := filepath.Join(c.dir, key)
	b, err := os.ReadFile(filepath.Join(entry, "outputs.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(b, &outputs); err != nil {
		return nil, false, fmt.Errorf("cache entry %s: %w", key, err)
	}
	src, err := os.OpenRoot(entry)
	if err != nil {
		return nil, false, err
	}
	defer src.Close()
	for i, p := range paths {
		rel, err := workspacePath(p)
		if err != nil {
			return nil, false, err
		}
		from := fmt.Sprintf("paths/%d", i)
		if _, err := src.Lstat(from); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := ws.RemoveAll(rel); err != nil {
			return nil, false, fmt.Errorf("restore %s: %w", p, err)
		}
		if dir := path.Dir(rel); dir != "." {
			if err := ws.MkdirAll(dir, 0o755); err != nil {
				return nil, false, fmt.Errorf("restore %s: %w", p, err)
			}
		}
		if err := copyTree(src, from, ws, rel); err != nil {
			return nil, false, fmt.Errorf("restore %s: %w", p, err)
		}
	}
	return outputs, true, nil
}

// save copies the step's paths out of the workspace and keeps them, with its outputs, under
// key. An entry saved meanwhile by another run is kept and this one dropped.
func (c *cacheStore) save(ws *os.Root, key string, paths []string, outputs map[string]string) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(c.dir, ".tmp-"+key[:16]+"-"+hex.EncodeToString(rnd[:]))
	if err := os.MkdirAll(filepath.Join(tmp, "paths"), 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dst, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer dst.Close()
	for i, p := range paths {
		rel, err := workspacePath(p)
		if err != nil {
			return err
		}
		if _, err := ws.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := copyTree(ws, rel, dst, fmt.Sprintf("paths/%d", i)); err != nil {
			return fmt.Errorf("save %s: %w", p, err)
		}
	}
	b, err := json.Marshal(outputs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "outputs.json"), b, 0o600); err != nil {
		return err
	}
	err = os.Rename(tmp, filepath.Join(c.dir, key))
	if err != nil && (errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)) {
		return nil // saved by another run meanwhile
	}
	return err
}

// copyTree copies the file, symbolic link or directory tree at name in src to name in dst,
// keeping permission bits and numeric owners. Both roots confine it: a symbolic link in the
// workspace is copied as a link, never followed out of it.
func copyTree(src *os.Root, from string, dst *os.Root, to string) error {
	info, err := src.Lstat(from)
	if err != nil {
		return err
	}
	switch mode := info.Mode(); {
	case mode&fs.ModeSymlink != 0:
		target, err := src.Readlink(from)
		if err != nil {
			return err
		}
		if err := dst.Symlink(target, to); err != nil {
			return err
		}
	case mode.IsDir():
		if err := dst.Mkdir(to, mode.Perm()|0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		d, err := src.Open(from)
		if err != nil {
			return err
		}
		entries, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := copyTree(src, path.Join(from, e.Name()), dst, path.Join(to, e.Name())); err != nil {
				return err
			}
		}
		if err := dst.Chmod(to, mode.Perm()|mode&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	case mode.IsRegular():
		in, err := src.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := dst.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		if err := dst.Chmod(to, mode.Perm()); err != nil {
			return err
		}
	default:
		return nil // sockets, devices and pipes are not kept
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		_ = dst.Lchown(to, int(st.Uid), int(st.Gid))
	}
	return nil
}
