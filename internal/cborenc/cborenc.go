// Package cborenc is the CBOR (RFC 8949) encoding that Dao's etcd store and node protocol
// share: the dao types with their JSON field names (the "json" struct tags, omitempty and
// omitzero included), so that the two encodings hold the same and a type needs no code
// of its own for either. Times are RFC 3339 text with nanoseconds, as in JSON. Unlike
// JSON, task states and durations are their numbers, not their text (dao.TaskState's
// values are part of the format: they are never renumbered): their text methods cost
// as much as the rest of a task together. A reader checks the states it decodes
// (dao.TaskState.Valid), as it checks everything else a peer sends.
//
// Decoding is bounded against a hostile peer or value: 32 levels of nesting, 65,536
// elements in an array or pairs in a map, no duplicate keys, valid UTF-8 only. Unknown
// fields are ignored, as encoding/json does, so that a newer writer's values still read.
package cborenc

import (
	"github.com/fxamacker/cbor/v2"
)

var (
	enc cbor.EncMode
	dec cbor.DecMode
)

func init() {
	var err error
	enc, err = cbor.EncOptions{
		Time: cbor.TimeRFC3339Nano,
		Sort: cbor.SortNone,
	}.EncMode()
	if err != nil {
		panic(err)
	}
	dec, err = cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v.
func Marshal(v any) ([]byte, error) { return enc.Marshal(v) }

// Unmarshal decodes data, which must be exactly one CBOR value, into v.
func Unmarshal(data []byte, v any) error { return dec.Unmarshal(data, v) }

// RawMessage is an encoded CBOR value, written as it is.
type RawMessage = cbor.RawMessage
