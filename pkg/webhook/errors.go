package webhook

import "errors"

// Reasons Verify rejects a request; test them with errors.Is. No error of
// this package carries a secret.
var (
	// ErrMalformed: no Authorization header, several, or one that does not
	// parse (seven $-separated parts, scheme hmac, version v1, a decimal
	// timestamp, a 32 and a 64 lower-case hex digit nonce and signature).
	ErrMalformed = errors.New("malformed authorization")
	// ErrUnknownKey: the key id names no key of the Verifier.
	ErrUnknownKey = errors.New("unknown key id")
	// ErrStale: the timestamp is further from now than the window.
	ErrStale = errors.New("timestamp outside the window")
	// ErrBadSignature: the signature does not match the request, or the
	// method or path signed are not the request's.
	ErrBadSignature = errors.New("bad signature")
	// ErrReplayed: a valid request whose nonce was used before within the
	// window.
	ErrReplayed = errors.New("nonce already used")
)
