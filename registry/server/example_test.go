package server_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

// A registry on a temporary directory: push a blob in one request, read it back.
func Example() {
	root, err := os.MkdirTemp("", "hub")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	st, err := storage.OpenFS(root)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(st)
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	blob := []byte("hello, registry")
	d := digest.FromBytes(blob)
	res, err := http.Post(hs.URL+"/v2/team/app/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(blob))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Location"))

	res, err = http.Get(hs.URL + "/v2/team/app/blobs/" + d.String())
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))

	res, err = http.Get(hs.URL + "/v2/Team/app/tags/list")
	if err != nil {
		log.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))
	// Output:
	// 201 /v2/team/app/blobs/sha256:d4ceac3b8b759b17b86618c4165bb23a506c157c81a034147cf8e3510691aa1c
	// 200 hello, registry
	// 400 {"errors":[{"code":"NAME_INVALID","message":"registry: invalid image name: repository \"Team/app\" does not match the distribution grammar"}]}
}
