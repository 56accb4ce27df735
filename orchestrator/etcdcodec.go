package orchestrator

import (
	"encoding/json"
	"fmt"

	"github.com/opendao/dao/internal/cborenc"
)

// EtcdEncoding is how an EtcdStore encodes the objects it writes (WithEtcdEncoding).
// Whatever it writes, it reads both: a value that starts with '{' is JSON, any other is
// CBOR, so that a store written in one encoding can be opened with the other, and the
// replicas of one store need not agree.
type EtcdEncoding int

const (
	// EtcdCBOR is CBOR (RFC 8949) with the objects' JSON field names: about half the
	// encoding and a third of the decoding time of JSON, and a fifth smaller
	// (BENCHMARKS.md). Task states and durations are their numbers, times RFC 3339 text
	// (internal/cborenc). It is the default.
	EtcdCBOR EtcdEncoding = iota
	// EtcdJSON is encoding/json, which etcdctl shows as it is.
	EtcdJSON
)

func (e EtcdEncoding) String() string {
	switch e {
	case EtcdCBOR:
		return "cbor"
	case EtcdJSON:
		return "json"
	}
	return fmt.Sprintf("EtcdEncoding(%d)", int(e))
}

// WithEtcdEncoding sets how an EtcdStore encodes the objects it writes; the default is
// EtcdCBOR. The revision key and the store's name are JSON whatever it is.
func WithEtcdEncoding(e EtcdEncoding) StoreOption {
	return func(o *storeOptions) error {
		if e != EtcdCBOR && e != EtcdJSON {
			return invalid("WithEtcdEncoding", "%v: must be EtcdCBOR or EtcdJSON", e)
		}
		o.etcdEncoding = e
		return nil
	}
}

// marshalValue encodes an object as e says.
func marshalValue(e EtcdEncoding, v any) ([]byte, error) {
	if e == EtcdJSON {
		return json.Marshal(v)
	}
	return cborenc.Marshal(v)
}

// unmarshalValue decodes a value of either encoding.
func unmarshalValue(b []byte, v any) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, v)
	}
	if err := cborenc.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not JSON, and not CBOR: %w", err)
	}
	return nil
}
