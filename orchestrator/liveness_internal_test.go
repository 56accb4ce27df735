package orchestrator

import (
	"testing"
	"time"

	"github.com/opendao/dao"
)

func TestLivenessJudgesBySilence(t *testing.T) {
	t.Parallel()
	l := liveness{timeout: 10 * time.Second, grace: 30 * time.Second}
	tests := []struct {
		since time.Duration
		cur   dao.NodeState
		want  dao.NodeState
		msg   string
	}{
		{time.Second, dao.NodeReady, dao.NodeReady, "heartbeat received"},
		{10 * time.Second, dao.NodeReady, dao.NodeReady, "heartbeat received"},
		{10*time.Second + time.Millisecond, dao.NodeReady, dao.NodeDisconnected, "no heartbeat for 10.001s (timeout 10s)"},
		{40 * time.Second, dao.NodeDisconnected, dao.NodeDisconnected, "no heartbeat for 40s (timeout 10s)"},
		{41 * time.Second, dao.NodeDisconnected, dao.NodeDown, "no heartbeat for 41s (timeout 10s + grace 30s)"},
		// Down stays down until a heartbeat, even if the silence looks shorter now.
		{20 * time.Second, dao.NodeDown, dao.NodeDown, "no heartbeat for 20s (timeout 10s + grace 30s)"},
		{0, dao.NodeDown, dao.NodeReady, "heartbeat received"},
	}
	for _, tt := range tests {
		got := l.judge(tt.since, tt.cur)
		if got != tt.want {
			t.Errorf("judge(%s, %s) = %s, want %s", tt.since, tt.cur, got, tt.want)
		}
		if msg := l.message(got, tt.since); msg != tt.msg {
			t.Errorf("message(%s, %s) = %q, want %q", got, tt.since, msg, tt.msg)
		}
	}
}
