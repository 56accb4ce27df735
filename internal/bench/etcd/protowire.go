package main

import (
	"errors"
	"math"
	"slices"
	"sort"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// A hand-written protobuf wire encoding of orchestrator.Task, for the measurement only:
// every field of the task, numbered in the order of its struct; zero values left out;
// signed integers and durations zig-zag varints; times Unix nanoseconds (zig-zag), in UTC;
// floats fixed64; strings and nested structs length-delimited. It is what a .proto of the
// same fields would put on the wire, without a code generator.

// pw appends fields to a buffer.
type pw []byte

func (b *pw) str(num protowire.Number, s string) {
	if s != "" {
		*b = protowire.AppendTag(*b, num, protowire.BytesType)
		*b = protowire.AppendString(*b, s)
	}
}

func (b *pw) strs(num protowire.Number, ss []string) {
	for _, s := range ss {
		*b = protowire.AppendTag(*b, num, protowire.BytesType)
		*b = protowire.AppendString(*b, s)
	}
}

func (b *pw) uint(num protowire.Number, v uint64) {
	if v != 0 {
		*b = protowire.AppendTag(*b, num, protowire.VarintType)
		*b = protowire.AppendVarint(*b, v)
	}
}

func (b *pw) sint(num protowire.Number, v int64) { b.uint(num, protowire.EncodeZigZag(v)) }

func (b *pw) boolean(num protowire.Number, v bool) {
	if v {
		b.uint(num, 1)
	}
}

func (b *pw) float(num protowire.Number, v float64) {
	if v != 0 {
		*b = protowire.AppendTag(*b, num, protowire.Fixed64Type)
		*b = protowire.AppendFixed64(*b, math.Float64bits(v))
	}
}

func (b *pw) time(num protowire.Number, t time.Time) {
	if !t.IsZero() {
		*b = protowire.AppendTag(*b, num, protowire.VarintType)
		*b = protowire.AppendVarint(*b, protowire.EncodeZigZag(t.UnixNano()))
	}
}

// msg appends a nested message that fill writes, unless it is empty.
func (b *pw) msg(num protowire.Number, fill func(b *pw)) { b.nested(num, false, fill) }

// nested appends a nested message that fill writes, even an empty one when keep is set.
func (b *pw) nested(num protowire.Number, keep bool, fill func(b *pw)) {
	*b = protowire.AppendTag(*b, num, protowire.BytesType)
	at := len(*b)
	fill(b)
	n := len(*b) - at
	if n == 0 && !keep {
		*b = (*b)[:at-protowire.SizeTag(num)]
		return
	}
	var pre [binaryMaxVarint]byte
	l := protowire.AppendVarint(pre[:0], uint64(n))
	*b = slices.Insert(*b, at, l...)
}

const binaryMaxVarint = 10

func appendTask(dst []byte, t *orchestrator.Task) []byte {
	b := pw(dst)
	b.str(1, t.ID)
	b.str(2, t.ServiceID)
	b.uint(3, t.ServiceVersion)
	b.sint(4, int64(t.Slot))
	b.str(5, t.NodeID)
	b.msg(6, func(b *pw) { appendSpec(b, &t.Spec) })
	b.msg(7, func(b *pw) {
		r := &t.Restart
		b.str(1, string(r.Condition))
		b.sint(2, int64(r.InitialDelay))
		b.sint(3, int64(r.MaxDelay))
		b.float(4, r.Multiplier)
		b.float(5, r.Jitter)
		b.sint(6, int64(r.ResetAfter))
		b.sint(7, int64(r.MaxAttempts))
		b.sint(8, int64(r.Window))
	})
	b.sint(8, int64(t.DesiredState))
	b.msg(9, func(b *pw) {
		s := &t.Status
		b.sint(1, int64(s.State))
		b.str(2, s.Message)
		b.str(3, s.Err)
		b.str(4, s.ContainerID)
		b.uint(5, uint64(s.PID))
		b.str(6, string(s.Health))
		b.sint(7, int64(s.ExitCode))
		b.boolean(8, s.OOMKilled)
		b.sint(9, int64(s.Restarts))
		b.boolean(10, s.Restarting)
		b.time(11, s.NextRestartAt)
		b.strs(12, s.Addresses)
		b.time(13, s.StartedAt)
		b.time(14, s.FinishedAt)
		b.time(15, s.Timestamp)
	})
	b.time(10, t.CreatedAt)
	b.uint(11, t.Revision)
	return b
}

func appendSpec(b *pw, s *dao.ContainerSpec) {
	b.str(1, s.Image)
	b.strs(2, s.Command)
	b.strs(3, s.Args)
	b.strs(4, s.Env)
	b.str(5, s.WorkingDir)
	b.str(6, s.User)
	b.str(7, s.Hostname)
	b.msg(8, func(b *pw) {
		b.sint(1, s.Resources.MilliCPU)
		b.sint(2, s.Resources.Memory)
		b.sint(3, s.Resources.Pids)
	})
	for i := range s.Mounts {
		m := &s.Mounts[i]
		b.msg(9, func(b *pw) {
			b.str(1, string(m.Type))
			b.str(2, m.Source)
			b.str(3, m.Target)
			b.boolean(4, m.ReadOnly)
			b.sint(5, m.SizeBytes)
		})
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		b.msg(10, func(b *pw) {
			b.str(1, p.Name)
			b.sint(2, int64(p.ContainerPort))
			b.sint(3, int64(p.HostPort))
			b.str(4, p.Protocol)
		})
	}
	if h := s.HealthCheck; h != nil {
		// Present even when empty: nil and an empty check differ.
		b.nested(11, true, func(b *pw) {
			b.strs(1, h.Command)
			b.sint(2, int64(h.Interval))
			b.sint(3, int64(h.Timeout))
			b.sint(4, int64(h.StartPeriod))
			b.sint(5, int64(h.Retries))
		})
	}
	b.boolean(12, s.ReadOnlyRootfs)
	b.boolean(13, s.Privileged)
	b.strs(14, s.CapAdd)
	b.strs(15, s.CapDrop)
	b.boolean(16, s.HostNetwork)
	b.boolean(17, s.HostPID)
	b.boolean(18, s.HostIPC)
	b.str(19, string(s.Seccomp))
	b.str(20, s.StopSignal)
	b.sint(21, int64(s.StopGracePeriod))
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.nested(22, true, func(b *pw) {
			b.str(1, k)
			b.str(2, s.Labels[k])
		})
	}
}

var errWire = errors.New("protowire: malformed task")

// fields calls f with each field of b: its number, type, and its value as a varint (or
// fixed64) or as bytes.
func fields(b []byte, f func(num protowire.Number, v uint64, p []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var v uint64
		var p []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			p, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := f(num, v, p); err != nil {
			return err
		}
	}
	return nil
}

func zz(v uint64) int64 { return protowire.DecodeZigZag(v) }

func wireTime(v uint64) time.Time { return time.Unix(0, zz(v)).UTC() }

func decodeTask(b []byte, t *orchestrator.Task) error {
	return fields(b, func(num protowire.Number, v uint64, p []byte) error {
		switch num {
		case 1:
			t.ID = string(p)
		case 2:
			t.ServiceID = string(p)
		case 3:
			t.ServiceVersion = v
		case 4:
			t.Slot = int(zz(v))
		case 5:
			t.NodeID = string(p)
		case 6:
			return decodeSpec(p, &t.Spec)
		case 7:
			r := &t.Restart
			return fields(p, func(num protowire.Number, v uint64, p []byte) error {
				switch num {
				case 1:
					r.Condition = dao.RestartCondition(p)
				case 2:
					r.InitialDelay = dao.Duration(zz(v))
				case 3:
					r.MaxDelay = dao.Duration(zz(v))
				case 4:
					r.Multiplier = math.Float64frombits(v)
				case 5:
					r.Jitter = math.Float64frombits(v)
				case 6:
					r.ResetAfter = dao.Duration(zz(v))
				case 7:
					r.MaxAttempts = int(zz(v))
				case 8:
					r.Window = dao.Duration(zz(v))
				}
				return nil
			})
		case 8:
			t.DesiredState = dao.TaskState(zz(v))
		case 9:
			s := &t.Status
			return fields(p, func(num protowire.Number, v uint64, p []byte) error {
				switch num {
				case 1:
					s.State = dao.TaskState(zz(v))
				case 2:
					s.Message = string(p)
				case 3:
					s.Err = string(p)
				case 4:
					s.ContainerID = string(p)
				case 5:
					s.PID = uint32(v)
				case 6:
					s.Health = dao.HealthState(p)
				case 7:
					s.ExitCode = int(zz(v))
				case 8:
					s.OOMKilled = v != 0
				case 9:
					s.Restarts = int(zz(v))
				case 10:
					s.Restarting = v != 0
				case 11:
					s.NextRestartAt = wireTime(v)
				case 12:
					s.Addresses = append(s.Addresses, string(p))
				case 13:
					s.StartedAt = wireTime(v)
				case 14:
					s.FinishedAt = wireTime(v)
				case 15:
					s.Timestamp = wireTime(v)
				}
				return nil
			})
		case 10:
			t.CreatedAt = wireTime(v)
		case 11:
			t.Revision = v
		}
		return nil
	})
}

func decodeSpec(b []byte, s *dao.ContainerSpec) error {
	return fields(b, func(num protowire.Number, v uint64, p []byte) error {
		switch num {
		case 1:
			s.Image = string(p)
		case 2:
			s.Command = append(s.Command, string(p))
		case 3:
			s.Args = append(s.Args, string(p))
		case 4:
			s.Env = append(s.Env, string(p))
		case 5:
			s.WorkingDir = string(p)
		case 6:
			s.User = string(p)
		case 7:
			s.Hostname = string(p)
		case 8:
			r := &s.Resources
			return fields(p, func(num protowire.Number, v uint64, _ []byte) error {
				switch num {
				case 1:
					r.MilliCPU = zz(v)
				case 2:
					r.Memory = zz(v)
				case 3:
					r.Pids = zz(v)
				}
				return nil
			})
		case 9:
			var m dao.Mount
			err := fields(p, func(num protowire.Number, v uint64, p []byte) error {
				switch num {
				case 1:
					m.Type = dao.MountType(p)
				case 2:
					m.Source = string(p)
				case 3:
					m.Target = string(p)
				case 4:
					m.ReadOnly = v != 0
				case 5:
					m.SizeBytes = zz(v)
				}
				return nil
			})
			s.Mounts = append(s.Mounts, m)
			return err
		case 10:
			var pm dao.PortMapping
			err := fields(p, func(num protowire.Number, v uint64, p []byte) error {
				switch num {
				case 1:
					pm.Name = string(p)
				case 2:
					pm.ContainerPort = int(zz(v))
				case 3:
					pm.HostPort = int(zz(v))
				case 4:
					pm.Protocol = string(p)
				}
				return nil
			})
			s.Ports = append(s.Ports, pm)
			return err
		case 11:
			h := &dao.HealthCheck{}
			s.HealthCheck = h
			return fields(p, func(num protowire.Number, v uint64, p []byte) error {
				switch num {
				case 1:
					h.Command = append(h.Command, string(p))
				case 2:
					h.Interval = dao.Duration(zz(v))
				case 3:
					h.Timeout = dao.Duration(zz(v))
				case 4:
					h.StartPeriod = dao.Duration(zz(v))
				case 5:
					h.Retries = int(zz(v))
				}
				return nil
			})
		case 12:
			s.ReadOnlyRootfs = v != 0
		case 13:
			s.Privileged = v != 0
		case 14:
			s.CapAdd = append(s.CapAdd, string(p))
		case 15:
			s.CapDrop = append(s.CapDrop, string(p))
		case 16:
			s.HostNetwork = v != 0
		case 17:
			s.HostPID = v != 0
		case 18:
			s.HostIPC = v != 0
		case 19:
			s.Seccomp = dao.SeccompProfile(p)
		case 20:
			s.StopSignal = string(p)
		case 21:
			s.StopGracePeriod = dao.Duration(zz(v))
		case 22:
			var k, val string
			err := fields(p, func(num protowire.Number, _ uint64, p []byte) error {
				switch num {
				case 1:
					k = string(p)
				case 2:
					val = string(p)
				}
				return nil
			})
			if s.Labels == nil {
				s.Labels = map[string]string{}
			}
			s.Labels[k] = val
			return err
		}
		return nil
	})
}
