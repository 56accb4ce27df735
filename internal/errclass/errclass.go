package errclass

// New returns a sentinel error whose text is msg and which matches class with errors.Is,
// and so with errdefs' IsX functions: New(errdefs.ErrNotFound, "edge: container not found").
// class may itself be such a sentinel (a package's ErrInvalidOption of class dao.ErrInvalid,
// itself of class errdefs.ErrInvalidArgument): errors.Is sees the whole chain. Each call
// returns a distinct error, so two packages' sentinels of one class do not match each other.
func New(class error, msg string) error {
	return &sentinel{msg: msg, class: class}
}

type sentinel struct {
	msg   string
	class error
}

func (e *sentinel) Error() string { return e.msg }

// Unwrap returns the class, for errors.Is and errors.As.
func (e *sentinel) Unwrap() error { return e.class }
