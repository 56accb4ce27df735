package cluster_test

import (
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
)

// TestCertificatesRotateBeforeTheyExpire: at 50-80% of its lifetime the node gets a new
// certificate over its authenticated connection and saves it; once the old one has expired
// the node still connects, with the new one.
func TestCertificatesRotateBeforeTheyExpire(t *testing.T) {
	clk := clock.NewManual(time.Now())
	const life = time.Hour
	p := newPlaneCA(t, []pki.CAOption{pki.WithClock(clk)}, nil,
		cluster.WithServerClock(clk), cluster.WithNodeCertLifetime(life))
	dir := t.TempDir()
	ident := p.join("edge-1")
	if err := ident.Save(dir); err != nil {
		t.Fatal(err)
	}
	r := p.connectAs(ident, cluster.WithClientClock(clk), cluster.WithIdentityDir(dir))
	p.waitFor("connected", 5*time.Second, func() bool { return r.client.Connected() })
	old := r.client.Identity().Certificate.Leaf

	clk.Advance(life * 81 / 100)
	p.waitFor("renewed", 10*time.Second, func() bool {
		return r.client.Identity().Certificate.Leaf.SerialNumber.Cmp(old.SerialNumber) != 0
	})
	renewed := r.client.Identity().Certificate.Leaf
	if !renewed.NotAfter.After(old.NotAfter) {
		t.Errorf("renewed certificate expires %s, not after the old one's %s", renewed.NotAfter, old.NotAfter)
	}
	saved, err := cluster.LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Certificate.Leaf.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Error("the renewed certificate was not saved")
	}
	if saved.Certificate.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(old.PublicKey) {
		t.Error("the renewal kept the old key")
	}

	// Past the old certificate's expiry, the agent's program restarts: it connects with
	// the saved new certificate, while the old one is refused with a clear error.
	sessions := r.client.Sessions()
	clk.Advance(life / 4)
	// The session opened with the old certificate ends with it; the node connects again
	// with the new one.
	p.waitFor("a new session once the old certificate expired", 10*time.Second, func() bool {
		clk.Advance(50 * time.Millisecond) // the client's backoff runs on this clock
		return r.client.Sessions() > sessions && r.client.Connected()
	})
	r.stop()
	again := p.connectAs(saved, cluster.WithClientClock(clk))
	p.waitFor("reconnected with the new certificate", 10*time.Second, func() bool { return again.client.Connected() })
	again.stop()
	stale := p.connectAs(ident, cluster.WithClientClock(clk))
	select {
	case err := <-stale.done:
		stale.cancel = nil
		if !errors.Is(err, pki.ErrExpired) || !strings.Contains(err.Error(), "join again") {
			t.Errorf("Run with the expired certificate: %v, want ErrExpired telling to join again", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run with an expired certificate still runs after 10s")
	}
}
