// Package operr gives the errors of the registry packages' operations (pull, push, copy,
// import) their one "registry:" prefix: "registry: pull x: write y: ..." rather than
// "registry: pull x: registry: write y: ...".
package operr
