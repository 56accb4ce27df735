package dao_test

import (
	"errors"
	"fmt"

	"github.com/opendao/dao"
)

func ExampleServiceSpec_Validate() {
	spec := dao.ServiceSpec{
		Name:     "Web",
		Replicas: -1,
		Container: dao.ContainerSpec{
			Image:     "registry.example.com/web:1.0",
			Env:       []string{"MODE"},
			Resources: dao.Resources{Memory: dao.MiB},
		},
	}
	err := spec.Validate()
	fmt.Println(err)

	// The error is a *dao.ValidationError that lists every problem, and matches
	// dao.ErrInvalid.
	var verr *dao.ValidationError
	if errors.As(err, &verr) {
		for _, fe := range verr.Errors {
			fmt.Println(fe.Field)
		}
	}
	fmt.Println(errors.Is(err, dao.ErrInvalid))
	// Output:
	// invalid service spec: name: "Web" must be a DNS label: lowercase letters, digits and '-', at most 63 bytes; container.env[0]: "MODE" must have the form KEY=VALUE; container.resources.memory: must be >= 4MiB, got 1MiB; replicas: must be >= 0, got -1
	// name
	// container.env[0]
	// container.resources.memory
	// replicas
	// true
}

func ExampleTaskState_CanTransition() {
	fmt.Println(dao.TaskPending.CanTransition(dao.TaskRunning))
	fmt.Println(dao.TaskRunning.CanTransition(dao.TaskRunning))
	fmt.Println(dao.TaskRunning.CanTransition(dao.TaskStarting))
	fmt.Println(dao.TaskFailed.CanTransition(dao.TaskRunning))
	fmt.Println(dao.TaskRunning.CanTransition(dao.TaskFailed), dao.TaskFailed.Terminal())
	// Output:
	// true
	// true
	// false
	// false
	// true true
}

func ExampleFormatBytes() {
	fmt.Println(dao.FormatBytes(512))
	fmt.Println(dao.FormatBytes(64 * dao.MiB))
	fmt.Println(dao.FormatBytes(3 * dao.GiB / 2))
	// Output:
	// 512B
	// 64MiB
	// 1.5GiB
}
