package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// The etcd flags are checked before anything starts, each error naming its flag.
func TestEtcdOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for no error
	}{
		{nil, ""},
		{[]string{"--etcd", "http://127.0.0.1:2379"}, ""},
		{[]string{"--etcd", "http://127.0.0.1:2379", "--etcd-compaction", "0"}, ""},
		{[]string{"--etcd", "http://127.0.0.1:2379", "--etcd-compaction", "10ms"}, "--etcd-compaction"},
		{[]string{"--etcd", "http://127.0.0.1:2379", "--etcd-compaction", "-1m"}, "--etcd-compaction"},
		{[]string{"--etcd", "http://127.0.0.1:2379", "--lease-ttl", "1500ms"}, "--lease-ttl"},
		{[]string{"--etcd", "http://a:2379,,http://b:2379"}, "empty endpoint"},
		{[]string{"--etcd", "http://127.0.0.1:2379", "--etcd-prefix", "/dao"}, "--etcd-prefix"},
		{[]string{"--etcd-cert", "c.pem"}, "--etcd-cert needs --etcd"},
	} {
		var o etcdOptions
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.flags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err := o.check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	var o etcdOptions
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.flags(fs)
	if o.compact != 5*time.Minute {
		t.Errorf("--etcd-compaction defaults to %v, want 5m", o.compact)
	}
}
