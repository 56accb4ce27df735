package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to name with permissions perm, atomically and durably: into a
// temporary file beside name (so on the same file system), synced, then renamed over name,
// and the directory synced so that the rename survives a power cut. On error name is
// unchanged and the temporary file is removed. perm is set exactly, whatever the umask.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		return err
	}
	return nil
}
