// Package smoketest holds the quickstart web app's smoke tests: they start the app's binary
// as its users would and talk to it over HTTP on the loopback interface.
//
// The delivery pipeline of examples/pipeline compiles them into a static test binary
// (CGO_ENABLED=0 go test -c) and runs it in a busybox container against the very binary it
// is about to ship, which $WEBAPP_BIN names. Without $WEBAPP_BIN, as under go test, the tests
// build the app from its source in examples/quickstart/webapp first.
package smoketest
