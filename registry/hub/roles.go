package hub

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/opendao/dao/registry/server"
)

// Role is what a member may do in a project, with Harbor's meanings.
type Role string

// The roles of a project's members.
const (
	// RoleAdmin may pull, push and delete, and manage the project's members and robots.
	RoleAdmin Role = "admin"
	// RoleMaintainer may pull, push and delete.
	RoleMaintainer Role = "maintainer"
	// RoleDeveloper may pull and push.
	RoleDeveloper Role = "developer"
	// RoleGuest may pull.
	RoleGuest Role = "guest"
)

// Actions returns the repository actions of the role, nil for an unknown one.
func (r Role) Actions() []string {
	switch r {
	case RoleAdmin, RoleMaintainer:
		return []string{server.ActionPull, server.ActionPush, server.ActionDelete}
	case RoleDeveloper:
		return []string{server.ActionPull, server.ActionPush}
	case RoleGuest:
		return []string{server.ActionPull}
	}
	return nil
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.Actions() != nil }

// Permission is what a robot account may do: actions on the repositories that Repository
// names. Repository is a repository's name ("team-a/app"), a pattern as path.Match reads
// it ("team-a/app-*", where * does not cross a "/"), or a prefix ending in "/**" for every
// repository under it ("team-a/**": the whole project).
type Permission struct {
	// Repository names the repositories.
	Repository string `json:"repository" yaml:"repository"`
	// Actions are among "pull", "push" and "delete".
	Actions []string `json:"actions" yaml:"actions"`
}

// matches reports whether the permission's pattern names repo.
func (p Permission) matches(repo string) bool {
	if prefix, ok := strings.CutSuffix(p.Repository, "/**"); ok {
		return strings.HasPrefix(repo, prefix+"/")
	}
	ok, err := path.Match(p.Repository, repo)
	return err == nil && ok
}

// project returns the project the pattern is within: its first component, which must be
// a plain name.
func (p Permission) project() string {
	first, _, _ := strings.Cut(p.Repository, "/")
	return first
}

func (p Permission) validate() error {
	proj := p.project()
	if err := validateProjectName(proj); err != nil {
		return fmt.Errorf("%w: permission %q: its first component must be a project: %v", ErrInvalidOption, p.Repository, err)
	}
	pat := strings.TrimSuffix(p.Repository, "/**")
	if _, err := path.Match(pat, ""); err != nil {
		return fmt.Errorf("%w: permission %q: %v", ErrInvalidOption, p.Repository, err)
	}
	if len(p.Actions) == 0 {
		return fmt.Errorf("%w: permission %q: no actions", ErrInvalidOption, p.Repository)
	}
	for _, a := range p.Actions {
		if !slices.Contains(repositoryActions, a) {
			return fmt.Errorf("%w: permission %q: action %q: want pull, push or delete", ErrInvalidOption, p.Repository, a)
		}
	}
	return nil
}

// repositoryActions are the actions on a repository, in the order tokens list them.
var repositoryActions = []string{server.ActionPull, server.ActionPush, server.ActionDelete}

// projectNameRE is a repository name component, as the distribution grammar has it.
var projectNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

func validateProjectName(name string) error {
	if len(name) > 64 || !projectNameRE.MatchString(name) {
		return fmt.Errorf("%w: project name %q: lower-case letters and digits, joined by '.', '_' or '-', at most 64", ErrInvalidOption, name)
	}
	return nil
}

// accountNameRE is a user's name.
var accountNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)

// RobotPrefix begins the name of every robot account, as in Harbor: "robot$ci".
const RobotPrefix = "robot$"

func validateUserName(name string) error {
	if !accountNameRE.MatchString(name) {
		return fmt.Errorf("%w: user name %q: letters, digits, '.', '_', '@', '-', at most 64", ErrInvalidOption, name)
	}
	return nil
}

// projectOf returns the project of a repository: its first component.
func projectOf(repo string) string {
	first, _, _ := strings.Cut(repo, "/")
	return first
}

// intersect returns the actions of want that have lists, in want's order, each once.
func intersect(want, have []string) []string {
	var out []string
	for _, a := range want {
		if slices.Contains(have, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// union adds the actions of b missing from a.
func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
