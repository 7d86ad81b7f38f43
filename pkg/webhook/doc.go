// Package webhook signs the HTTP calls of sfsync's webhook target and
// verifies them for receivers written in Go.
//
// A signed request carries one header:
//
//	Authorization: hmac v1$<key id>$<METHOD>$<PATH>$<unix ms>$<nonce>$<signature>
//
// PATH is the request's URL path as sent (percent-encoding kept, no query
// string) upper-cased, unix ms the signing time in milliseconds since the
// epoch, nonce 16 random bytes in lower-case hex, and signature the
// lower-case hex HMAC-SHA256, keyed with the secret, of
//
//	<METHOD>\n<PATH>\n<unix ms>\n<nonce>\n<body>
//
// A receiver checks the signature, that the time is within a window of its
// own clock (5 minutes either way by default), that the method and path
// signed are those of the request, and that the nonce was not used before
// within the window. README.md shows the same checks in other languages.
package webhook
