// Package hostfs opens host files and directories without following symbolic links
// (openat2 with RESOLVE_NO_SYMLINKS, or a walk of O_NOFOLLOW opens where the kernel lacks
// it) and identifies them (device, inode, type, size), so that the layer builder and the
// layout reader read only the files they were given, and notice one replaced meanwhile.
package hostfs
