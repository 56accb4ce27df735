package pipeline_test

import (
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/pipeline"
)

// The orchestrator is what a deploy step hands its image to.
var _ pipeline.Deployer = (*orchestrator.Orchestrator)(nil)
