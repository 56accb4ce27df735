package pipeline

import (
	"fmt"
	"maps"
	"slices"
)

// visitStrings calls f for every string of s that may hold "${{ }}" expressions, with its
// field path under at; set replaces the string in s.
func visitStrings(s *Step, at string, f func(field, v string, set func(string))) {
	one := func(field string, p *string) {
		f(field, *p, func(v string) { *p = v })
	}
	list := func(field string, l []string) {
		for i := range l {
			one(fmt.Sprintf("%s[%d]", field, i), &l[i])
		}
	}
	env := func(field string, m map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f(field+"."+k, m[k], func(v string) { m[k] = v })
		}
	}
	one(at+".image", &s.Image)
	list(at+".entrypoint", s.Entrypoint)
	list(at+".commands", s.Commands)
	list(at+".args", s.Args)
	env(at+".env", s.Env)
	one(at+".working_dir", &s.WorkingDir)
	one(at+".user", &s.User)
	if s.Upload != nil {
		one(at+".upload.name", &s.Upload.Name)
	}
	list(at+".download", s.Download)
	svcPaths := servicePaths(at, s.Services)
	for i := range s.Services {
		sv := &s.Services[i]
		sat := svcPaths[i]
		one(sat+".image", &sv.Image)
		list(sat+".entrypoint", sv.Entrypoint)
		list(sat+".commands", sv.Commands)
		list(sat+".args", sv.Args)
		env(sat+".env", sv.Env)
	}
	if b := s.Build; b != nil {
		one(at+".build.ref", &b.Ref)
		list(at+".build.entrypoint", b.Entrypoint)
		list(at+".build.cmd", b.Cmd)
		list(at+".build.env", b.Env)
		one(at+".build.working_dir", &b.WorkingDir)
		one(at+".build.user", &b.User)
	}
	if d := s.Deploy; d != nil {
		one(at+".deploy.service", &d.Service)
		one(at+".deploy.image", &d.Image)
	}
}

// clone returns a deep copy of s, so that rendering its expressions leaves the definition as
// it was.
func (s *Step) clone() *Step {
	c := *s
	c.Entrypoint = slices.Clone(s.Entrypoint)
	c.Commands = slices.Clone(s.Commands)
	c.Args = slices.Clone(s.Args)
	c.Env = maps.Clone(s.Env)
	c.Secrets = slices.Clone(s.Secrets)
	c.Needs = slices.Clone(s.Needs)
	c.Download = slices.Clone(s.Download)
	c.MatrixInclude = cloneMaps(s.MatrixInclude)
	c.MatrixExclude = cloneMaps(s.MatrixExclude)
	if s.Upload != nil {
		u := *s.Upload
		u.Paths = slices.Clone(u.Paths)
		c.Upload = &u
	}
	if s.Matrix != nil {
		c.Matrix = make(map[string][]string, len(s.Matrix))
		for k, v := range s.Matrix {
			c.Matrix[k] = slices.Clone(v)
		}
	}
	if s.Cache != nil {
		cc := *s.Cache
		cc.KeyFiles = slices.Clone(s.Cache.KeyFiles)
		cc.Paths = slices.Clone(s.Cache.Paths)
		c.Cache = &cc
	}
	c.Services = slices.Clone(s.Services)
	for i := range c.Services {
		sv := &c.Services[i]
		sv.Entrypoint = slices.Clone(sv.Entrypoint)
		sv.Commands = slices.Clone(sv.Commands)
		sv.Args = slices.Clone(sv.Args)
		sv.Env = maps.Clone(sv.Env)
		sv.Secrets = slices.Clone(sv.Secrets)
		sv.Ports = slices.Clone(sv.Ports)
	}
	if s.Build != nil {
		b := *s.Build
		b.Add = slices.Clone(b.Add)
		b.Entrypoint = slices.Clone(b.Entrypoint)
		b.Cmd = slices.Clone(b.Cmd)
		b.Env = slices.Clone(b.Env)
		b.ExposedPorts = slices.Clone(b.ExposedPorts)
		c.Build = &b
	}
	if s.Deploy != nil {
		d := *s.Deploy
		c.Deploy = &d
	}
	return &c
}

// render returns a copy of s with its expressions replaced by their values in sc.
func (s *Step) render(sc scope) (*Step, error) {
	c := s.clone()
	var firstErr error
	visitStrings(c, "steps."+s.Name, func(field, v string, set func(string)) {
		t, err := parseTemplate(v)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", field, err)
			}
			return
		}
		if t.hasExpr() {
			out, err := t.render(sc)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", field, err)
				}
				return
			}
			set(out)
		}
	})
	return c, firstErr
}

// serviceField is the field path of a service of the step at "at": by its name, or by its
// index when it has none.
func serviceField(at string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s.services[%d]", at, i)
	}
	return at + ".services." + name
}

// stepField is the field path of the i-th step: by its name, or by its index when it has
// none.
func stepField(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("steps[%d]", i)
	}
	return "steps." + name
}

// stepPaths returns the field path of each step: by its name (stepField), but by its index
// for a step whose name an earlier step has, so that every path names one step.
func stepPaths(steps []Step) []string {
	out := make([]string, len(steps))
	seen := make(map[string]bool, len(steps))
	for i := range steps {
		name := steps[i].Name
		if seen[name] {
			name = ""
		}
		seen[name] = true
		out[i] = stepField(i, name)
	}
	return out
}

// servicePaths returns the field path of each service of the step at "at", as stepPaths.
func servicePaths(at string, services []Service) []string {
	out := make([]string, len(services))
	seen := make(map[string]bool, len(services))
	for i := range services {
		name := services[i].Name
		if seen[name] {
			name = ""
		}
		seen[name] = true
		out[i] = serviceField(at, i, name)
	}
	return out
}

func cloneMaps(ms []map[string]string) []map[string]string {
	if ms == nil {
		return nil
	}
	out := make([]map[string]string, len(ms))
	for i, m := range ms {
		out[i] = maps.Clone(m)
	}
	return out
}
