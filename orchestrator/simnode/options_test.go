package simnode_test

import (
	"testing"
	"time"

	"github.com/opendao/dao"
	shared "github.com/opendao/dao/internal/testutil/fixture"
	"github.com/opendao/dao/orchestrator/simnode"
)

// Every option rejects a bad value with an error that names the option and wraps
// dao.ErrInvalid.
func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	nodeWith := func(opt simnode.Option) error {
		n, err := simnode.New(dao.Node{ID: "n1"}, opt)
		if err == nil {
			n.Close()
		}
		return err
	}
	clusterWith := func(opt simnode.ClusterOption) error {
		c, err := simnode.NewCluster(1, opt)
		if err == nil {
			c.Close()
		}
		return err
	}
	tests := []struct {
		option string
		err    error
	}{
		{"WithClock", nodeWith(simnode.WithClock(nil))},
		{"WithStartLatency", nodeWith(simnode.WithStartLatency(nil))},
		{"WithStopLatency", nodeWith(simnode.WithStopLatency(nil))},
		{"WithCrashes", nodeWith(simnode.WithCrashes(1.5, simnode.Fixed(0)))},
		{"WithCrashes", nodeWith(simnode.WithCrashes(0.5, nil))},
		{"WithRejections", nodeWith(simnode.WithRejections(-0.1))},
		{"WithStatusFunc", nodeWith(simnode.WithStatusFunc(nil))},
		{"WithHeartbeat", nodeWith(simnode.WithHeartbeat(0, func(time.Time) {}))},
		{"WithHeartbeat", nodeWith(simnode.WithHeartbeat(time.Second, nil))},
		{"Option", nodeWith(nil)},
		{"WithShapes", clusterWith(simnode.WithShapes(nil))},
		{"WithClusterStatusFunc", clusterWith(simnode.WithClusterStatusFunc(nil))},
		{"WithClusterHeartbeat", clusterWith(simnode.WithClusterHeartbeat(-time.Second, func(string, time.Time) {}))},
		{"WithClusterHeartbeat", clusterWith(simnode.WithClusterHeartbeat(time.Second, nil))},
		{"WithRejections", clusterWith(simnode.WithNodeOptions(simnode.WithRejections(2)))},
		{"ClusterOption", clusterWith(nil)},
	}
	for _, tt := range tests {
		shared.CheckOptionError(t, tt.option, tt.err)
	}
}
