package dao_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/opendao/dao"
)

// FuzzServiceSpecJSON feeds arbitrary JSON to the decoder and to Validate: neither may panic,
// and a spec that validates must survive a JSON round trip unchanged in meaning (it validates
// again).
func FuzzServiceSpecJSON(f *testing.F) {
	f.Add([]byte(`{"name":"web","replicas":3,"container":{"image":"busybox","resources":{"memory":67108864}}}`))
	f.Add([]byte(`{"name":"x","mode":"global","container":{"image":"a/b:c","env":["A=B"],"mounts":[{"type":"tmpfs","target":"/t"}],"ports":[{"containerPort":80,"hostPort":8080}]}}`))
	f.Add([]byte(`{"name":"r","container":{"image":"r@sha256:0123456789012345678901234567890123456789012345678901234567890123","healthCheck":{"command":["true"],"interval":"1s"}},"restart":{"condition":"on-failure","maxDelay":"5s"},"update":{"parallelism":2,"order":"start-first"}}`))
	f.Add([]byte(`{"name":"","container":{"image":""},"replicas":-1,"restart":{"initialDelay":"-1s"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec dao.ServiceSpec
		if err := json.Unmarshal(data, &spec); err != nil {
			return
		}
		err := spec.Validate()
		if err != nil {
			var ve *dao.ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 || !errors.Is(err, dao.ErrInvalid) {
				t.Fatalf("Validate returned %T %v, want a non-empty *ValidationError", err, err)
			}
			return
		}
		b, err := json.Marshal(&spec)
		if err != nil {
			t.Fatalf("marshal a valid spec: %v", err)
		}
		var again dao.ServiceSpec
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("unmarshal what we marshalled: %v\n%s", err, b)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("valid spec invalid after a round trip: %v\n%s", err, b)
		}
	})
}
