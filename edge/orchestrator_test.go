package edge_test

import (
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/orchestrator"
)

// An edge agent is a node the orchestrator can drive directly, in the same process.
var _ orchestrator.NodeAgent = (*edge.Agent)(nil)
