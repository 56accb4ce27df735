// Package atomicfile writes small state files so that a crash leaves either the old file or
// the new one, never a mix or an empty file: the edge agent's last assignment, the control
// plane's CA state. A reader after a restart sees whole files only.
package atomicfile
