package hub

import (
	"github.com/opendao/dao/registry/server"
)

// Event is something that happened to a repository of the hub: a push (a blob committed
// or mounted, a manifest put), a pull (a blob or manifest GET) or a delete, for
// Config.Events. Its server.Event's Actor is the name of the user or robot account that
// did it ("" for an anonymous pull of a public project), so that a server.Notifier given
// it sends that name as the webhook's actor.
type Event struct {
	server.Event
	// Project is the project of the repository.
	Project string
	// Robot reports whether Actor is a robot account.
	Robot bool
}

// event is the hub's server.EventFunc: it keeps the usage and tells Config.Events.
func (h *Hub) event(e server.Event) {
	switch {
	case e.Action == server.EventPush && (e.Kind == "blob" || e.Kind == "manifest"):
		h.usage.linked(e.Repository, e.Kind, e.Digest, e.Size)
	case e.Action == server.EventDelete && (e.Kind == "blob" || e.Kind == "manifest"):
		h.usage.unlinked(e.Repository, e.Kind, e.Digest)
	case e.Action == server.EventPull && (e.Kind == "blob" || e.Kind == "manifest") && h.proxies[projectOf(e.Repository)] != nil:
		// What a proxy cache serves it has stored (fetched now or before): counted as a
		// push would be.
		h.usage.linked(e.Repository, e.Kind, e.Digest, e.Size)
	}
	if h.cfg.Events == nil {
		return
	}
	he := Event{Event: e, Project: projectOf(e.Repository)}
	if e.Request != nil {
		if id, ok := e.Request.Context().Value(identityKey{}).(identity); ok && id.who.kind != kindAnonymous {
			he.Actor = id.who.name
			he.Robot = id.who.kind == kindRobot
		}
	}
	h.cfg.Events(he)
}
