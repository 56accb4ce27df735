package pipeline

import (
	"github.com/opendao/dao"
)

// Pipeline is a DAG of steps. It is plain data: build one in Go or read one from YAML with
// Parse or Load, and check it with Validate (Runner.Run validates it again).
//
// Field names in validation errors and in JSON are those of the YAML format, such as
// "steps.test.needs[0]" or "steps.image.build.ref". A step is named by its name, or by its
// index ("steps[2]") when it has none or an earlier step has the same; a service likewise.
type Pipeline struct {
	// Name names the pipeline in its run record. Optional.
	Name string `json:"name,omitempty"`
	// Env is added to the environment of every container step and service; a step's own Env
	// wins over it.
	Env map[string]string `json:"env,omitempty"`
	// Steps are the pipeline's steps, in the order the run record lists them. Steps run as
	// soon as the steps they need have finished, not in this order.
	Steps []Step `json:"steps"`
}

// Step is one node of the DAG. It is one of three kinds, by which field is set:
//
//   - a container step (Image): runs Commands through "/bin/sh -c" (or the image's entrypoint
//     with Args) in a container, with the run's workspace mounted at Workspace;
//   - a build step (Build): builds an OCI image from workspace paths and pushes it with the
//     Runner's Pusher;
//   - a deploy step (Deploy): hands an image to the Runner's Deployer to update a service.
//
// A container step's environment is the pipeline's Env, the step's Env, its matrix values
// (MATRIX_<KEY>), its secrets, its services' addresses (DAO_SERVICE_<NAME>), and, winning over
// all of them: CI=true, DAO_WORKSPACE (/workspace), DAO_OUTPUT (the file to append
// "key=value" output lines to, or "key<<END" and lines up to "END" for values of several
// lines), DAO_RUN_ID, DAO_STEP (the step's name) and DAO_ATTEMPT (1 for the first attempt).
//
// Strings of a step may hold expressions between "${{" and "}}", replaced when the step starts:
// "${{ steps.version.outputs.tag }}" (an output of a step this one needs, directly or not),
// "${{ matrix.go }}" (this instance's matrix value), "${{ steps.test.outcome }}",
// "${{ env.MODE }}", "${{ secrets.TOKEN }}" or "${{ hashFiles('go.sum') }}": GitHub Actions'
// expressions (see the package documentation). A container step's environment also has
// GITHUB_OUTPUT (the same file as DAO_OUTPUT) and GITHUB_WORKSPACE, for scripts written for
// GitHub Actions.
type Step struct {
	// Name identifies the step in Needs, expressions and the run record: letters and digits,
	// with single '-' or '_' between them, at most 32 bytes. Required and unique.
	Name string `json:"name"`

	// Image is the container image, already in containerd's image store (pulled, imported,
	// or built and pushed by an earlier build step). Required for container steps.
	Image string `json:"image,omitempty"`
	// Entrypoint replaces the image's entrypoint. With Commands it is not allowed.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Commands are shell lines, run in order by "/bin/sh -c" with "set -e": the step fails at
	// the first line that fails. The image must have /bin/sh. Not with Args or Entrypoint.
	// In YAML, "run" (GitHub Actions' spelling, one script) is the same.
	Commands []string `json:"commands,omitempty"`
	// Shell runs Commands as a script file, as GitHub Actions' "shell" does: "bash" runs it
	// with "bash --noprofile --norc -eo pipefail {0}", "sh" with "sh -e {0}", and any other
	// value with "{0}" in it is the command line itself, such as "python3 {0}" ({0} is the
	// script's path, the other words are split at spaces). The image must have the shell,
	// and /bin/sh. The default, "", runs the lines with "/bin/sh -c" and "set -e".
	Shell string `json:"shell,omitempty"`
	// Args replace the image's command (after its entrypoint), as in a container spec.
	Args []string `json:"args,omitempty"`
	// Env adds environment variables to the container.
	Env map[string]string `json:"env,omitempty"`
	// Secrets names secrets given to Run (WithSecrets) to add to the container's environment,
	// each under its own name. Their values are masked in every log line, output and message.
	Secrets []string `json:"secrets,omitempty"`
	// WorkingDir is the container's working directory: absolute, or relative to the
	// workspace. The default is the workspace (Workspace). In YAML, "working-directory"
	// (GitHub Actions) is the same.
	WorkingDir string `json:"working_dir,omitempty"`
	// User runs the container's process as "uid", "uid:gid", "name" or "name:group". The
	// default is the image's user.
	User string `json:"user,omitempty"`

	// Needs names the steps that must finish before this one starts: the edges of the DAG.
	// In YAML, "depends_on" (Woodpecker) is the same.
	Needs []string `json:"needs,omitempty"`
	// If is the condition under which the step runs once its needs have finished: an
	// expression such as "always()", "failure()" or
	// "steps.build.outputs.version == '1.2'", optionally written inside "${{ }}". The default
	// is "success()": every step this one needs, directly or not, succeeded (or failed with
	// ContinueOnError). As in GitHub Actions, a condition that calls none of success(),
	// failure(), always() and cancelled() holds only when success() does as well; failure()
	// is true when a step this one needs, directly or not, failed.
	If string `json:"if,omitempty"`
	// Timeout bounds each attempt; when it passes, the step's container is stopped and the
	// attempt has timed out. Zero means no limit. In YAML, "timeout-minutes" (GitHub
	// Actions) gives it in minutes.
	Timeout dao.Duration `json:"timeout,omitempty"`
	// Retries is how many times a failed or timed-out attempt is tried again, 0-10.
	Retries int `json:"retries,omitempty"`
	// ContinueOnError makes a failure of this step count as a success for the steps that need
	// it and for the run's status. The step's own record still says it failed. In YAML,
	// "continue-on-error" (GitHub Actions) is the same.
	ContinueOnError bool `json:"continue_on_error,omitempty"`
	// Matrix fans the step out: one instance for every combination of the values, each with
	// its values in ${{ matrix.<key> }} and in the environment as MATRIX_<KEY>. Steps that need
	// a matrix step wait for all its instances; for them its status is the worst of its
	// instances', and its outputs those of all instances, a later instance's value winning.
	// At most 256 instances, MatrixInclude's and MatrixExclude's counted.
	Matrix map[string][]string `json:"matrix,omitempty"`
	// MatrixExclude removes the combinations of Matrix that have all the values of one of
	// its entries, and MatrixInclude then adds each of its entries' values to every
	// combination whose values of Matrix's keys it does not change, or adds it as an
	// instance of its own when it fits none: GitHub Actions' "include" and "exclude". In YAML
	// they are matrix.include and matrix.exclude. An exclude's keys must be Matrix's.
	MatrixInclude []map[string]string `json:"matrix_include,omitempty"`
	MatrixExclude []map[string]string `json:"matrix_exclude,omitempty"`
	// FailFast cancels the other instances of a matrix step, running or not started, once
	// one fails (and may not: ContinueOnError); they are cancelled, the run failed. The
	// default is false: every instance runs. (GitHub Actions' strategy.fail-fast is true by
	// default, and so is it when a YAML file writes the matrix under "strategy".)
	FailFast bool `json:"fail_fast,omitempty"`
	// MaxParallel is the most instances of a matrix step that run at once, within the
	// Runner's parallelism. The default, 0, is no limit but the Runner's.
	MaxParallel int `json:"max_parallel,omitempty"`
	// Cache keeps paths of the workspace between runs, keyed by the content of files.
	Cache *Cache `json:"cache,omitempty"`
	// Services are containers started before the step and stopped and removed after it.
	Services []Service `json:"services,omitempty"`
	// Upload keeps workspace paths as a named artifact once the step succeeds, for the
	// steps that need it to Download and for the run's record: the step's files as they
	// were then, whatever steps running beside it or after it write to the same paths.
	Upload *Artifact `json:"upload,omitempty"`
	// Download names artifacts that steps this one needs, directly or not, uploaded; their
	// files are copied into the workspace, at the paths they were uploaded from, before the
	// step starts.
	Download []string `json:"download,omitempty"`

	// Build makes this a build step.
	Build *Build `json:"build,omitempty"`
	// Deploy makes this a deploy step.
	Deploy *Deploy `json:"deploy,omitempty"`
}

// Workspace is where the run's workspace is mounted in every container step, and the steps'
// default working directory.
const Workspace = "/workspace"

// Cache keeps paths of the workspace between runs. The key is a digest of the content of
// KeyFiles (as the workspace holds them when the step starts) and of the step's definition
// after its expressions are replaced. When an earlier successful run saved that key, the
// paths are restored into the workspace before the step, and the step's outputs are those the
// saved run wrote; with SkipOnHit the step does not run at all. After a successful run that
// missed, the paths and outputs are saved under the key.
type Cache struct {
	// KeyFiles are workspace paths (relative, glob patterns allowed) whose content makes the
	// key. A missing file counts as missing, not as an error.
	KeyFiles []string `json:"key_files,omitempty"`
	// Paths are the files or directories to keep: relative to the workspace, or absolute under
	// Workspace. Required.
	Paths []string `json:"paths"`
	// SkipOnHit skips the step's work on a cache hit.
	SkipOnHit bool `json:"skip_on_hit,omitempty"`
}

// Service is a container started before its step (on the Runner's Runtime, which needs a
// network: edge.WithNetwork) and stopped and removed after it. The step reaches it by its
// name, which the step's /etc/hosts resolves to the service's address, and finds the address
// in the environment as DAO_SERVICE_<NAME> ("db" gives DAO_SERVICE_DB).
type Service struct {
	// Name is the service's host name for the step: lowercase letters and digits with single
	// '-' between them, at most 16 bytes. Required, unique within the step.
	Name string `json:"name"`
	// Image is the service's image. Required.
	Image string `json:"image"`
	// Entrypoint, Commands and Args are as for a step.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Commands   []string `json:"commands,omitempty"`
	Args       []string `json:"args,omitempty"`
	// Env and Secrets are as for a step.
	Env     map[string]string `json:"env,omitempty"`
	Secrets []string          `json:"secrets,omitempty"`
	// Ports are TCP ports the service must accept connections on before the step starts.
	Ports []int `json:"ports,omitempty"`
	// ReadyTimeout bounds the wait for Ports. The default is 30s.
	ReadyTimeout dao.Duration `json:"ready_timeout,omitempty"`
}

// Artifact names workspace paths to keep once a step succeeds (Step.Upload), as GitHub
// Actions' upload-artifact does. A run keeps its artifacts until it ends, under the
// directory of WithArtifactDir when it is given (one directory per artifact, by its name,
// the files at their workspace paths), and lists them in the record (StepRecord.Artifact).
type Artifact struct {
	// Name names the artifact, unique in the run: letters, digits, '.', '-' and '_', at
	// most 64 bytes, such as "app-${{ matrix.go }}". Required.
	Name string `json:"name"`
	// Paths are files or directories of the workspace, relative, as Cache.Paths. A path
	// that is not there fails the step. Required.
	Paths []string `json:"paths"`
}

// DefaultReadyTimeout is how long a service's ports may take to accept connections.
const DefaultReadyTimeout = dao.Duration(30_000_000_000) // 30s

// Build builds an OCI image from workspace paths, with no base image, and pushes it with the
// Runner's Pusher. The step's outputs are "ref" (Ref), "digest" (the manifest's digest) and
// "image" (the repository pinned to the digest, such as "example.com/app@sha256:..."), for
// the steps that need it.
type Build struct {
	// Ref names the image, such as "registry.example.com/app:1.2". Required.
	Ref string `json:"ref"`
	// Add lists what goes into the image, in order. Required.
	Add []BuildFile `json:"add"`
	// Entrypoint, Cmd, Env ("KEY=VALUE"), WorkingDir, User and ExposedPorts ("8080/tcp") make
	// the image's configuration.
	Entrypoint   []string `json:"entrypoint,omitempty"`
	Cmd          []string `json:"cmd,omitempty"`
	Env          []string `json:"env,omitempty"`
	WorkingDir   string   `json:"working_dir,omitempty"`
	User         string   `json:"user,omitempty"`
	ExposedPorts []string `json:"exposed_ports,omitempty"`
}

// BuildFile copies a workspace file or directory tree into the image.
type BuildFile struct {
	// Src is the workspace path, relative. Required.
	Src string `json:"src"`
	// Dst is the path in the image, absolute. Required.
	Dst string `json:"dst"`
}

// Deploy hands an image to the Runner's Deployer to update a service.
type Deploy struct {
	// Service names the service to update. Required.
	Service string `json:"service"`
	// Image is the image to run, normally the pinned image of a build step:
	// "${{ steps.image.outputs.image }}". Required.
	Image string `json:"image"`
}

// kind is what a step does.
type kind int

const (
	kindContainer kind = iota
	kindBuild
	kindDeploy
)

func (s *Step) kind() kind {
	switch {
	case s.Build != nil:
		return kindBuild
	case s.Deploy != nil:
		return kindDeploy
	}
	return kindContainer
}
