// Package name parses and normalises image references as the container ecosystem does:
// "busybox" is docker.io/library/busybox:latest, "team/app" is docker.io/team/app:latest,
// and a first element with a dot or a port, or "localhost", is a registry host.
//
//	r, err := name.ParseReference("registry.local:5000/app:1.2")
//	if err != nil {
//		return err // errors.Is(err, name.ErrInvalidName)
//	}
//	fmt.Println(r.Registry, r.Repository, r.Tag) // registry.local:5000 app 1.2
//
// It is the lowest of the registry packages: [github.com/opendao/dao/registry/remote] (the
// distribution client), [github.com/opendao/dao/registry/layout] and
// [github.com/opendao/dao/registry/ctrd] take references in its form.
package name
