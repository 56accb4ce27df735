package hub

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Project is a tenant: it owns the repositories whose first component is its name
// ("team-a/app" is in project "team-a").
type Project struct {
	// Name is the project's name, a repository name component.
	Name string `json:"name"`
	// Public projects may be pulled by anyone, anonymous callers too; private ones by
	// their members (and robots given the right) only.
	Public bool `json:"public"`
	// Quota is the most bytes the project's repositories may hold, each blob and manifest
	// counted once however many of them link it; 0 is no limit.
	Quota int64 `json:"quota,omitempty"`
	// Members are the project's users by name, with their roles.
	Members map[string]Role `json:"members,omitempty"`
}

// User is an account of a person (or a pipeline that logs in as one).
type User struct {
	// Name is the user's name, the username of basic auth.
	Name string `json:"name"`
	// SystemAdmin may do everything in every project and manage the hub.
	SystemAdmin bool `json:"systemAdmin,omitempty"`
}

// Robot is an account of a machine, limited to its permissions, as Harbor's robot
// accounts: it belongs to no project and has no role.
type Robot struct {
	// Name begins with RobotPrefix: "robot$ci".
	Name string `json:"name"`
	// Description says what it is for.
	Description string `json:"description,omitempty"`
	// Permissions are all it may do.
	Permissions []Permission `json:"permissions"`
	// ExpiresAt is when its secret stops working; zero for never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// userRecord is a user as the state keeps it.
type userRecord struct {
	User
	// Hash is the bcrypt hash of the password.
	Hash []byte `json:"hash"`
}

// robotRecord is a robot account as the state keeps it.
type robotRecord struct {
	Robot
	// SecretHash is the SHA-256 of the secret, which is random and long, so a fast hash
	// is enough.
	SecretHash []byte `json:"secretHash"`
}

// state is everything the hub knows but the content: its accounts, projects and key.
type state struct {
	Projects map[string]*Project     `json:"projects"`
	Users    map[string]*userRecord  `json:"users"`
	Robots   map[string]*robotRecord `json:"robots"`
	// Key is the token signing key, PKCS #8 DER of an ECDSA P-256 key.
	Key []byte `json:"key"`
}

func newState() *state {
	return &state{Projects: map[string]*Project{}, Users: map[string]*userRecord{}, Robots: map[string]*robotRecord{}}
}

// clone returns a deep copy, so that a change is made on a copy and published whole
// once it is persisted.
func (s *state) clone() *state {
	c := &state{Projects: make(map[string]*Project, len(s.Projects)), Users: make(map[string]*userRecord, len(s.Users)),
		Robots: make(map[string]*robotRecord, len(s.Robots)), Key: s.Key}
	for k, p := range s.Projects {
		cp := *p
		cp.Members = maps.Clone(p.Members)
		c.Projects[k] = &cp
	}
	for k, u := range s.Users {
		cu := *u
		c.Users[k] = &cu
	}
	for k, r := range s.Robots {
		cr := *r
		cr.Permissions = slices.Clone(r.Permissions)
		c.Robots[k] = &cr
	}
	return c
}

// The buckets and keys of the hub's database.
var (
	bucketState = []byte("state")
	keyState    = []byte("state")
	bucketLinks = []byte("links")
)

// loadState reads the state from db, a new one if it holds none.
func loadState(db *bolt.DB) (*state, error) {
	st := newState()
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		if b == nil {
			return nil
		}
		if v := b.Get(keyState); v != nil {
			return json.Unmarshal(v, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub: read state: %w", err)
	}
	if st.Projects == nil {
		st.Projects = map[string]*Project{}
	}
	if st.Users == nil {
		st.Users = map[string]*userRecord{}
	}
	if st.Robots == nil {
		st.Robots = map[string]*robotRecord{}
	}
	return st, nil
}

// saveState writes st to db in one transaction: all of it or nothing.
func saveState(db *bolt.DB, st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketState)
		if err != nil {
			return err
		}
		return b.Put(keyState, data)
	})
	if err != nil {
		return fmt.Errorf("hub: save state: %w", err)
	}
	return nil
}
