package events

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead letters. A message whose handler keeps failing (an error, not a
// hold: holds wait on NAKs and are never counted) is published again to
// retry it, with HeaderErrors counting the failures; after a bound it goes
// to DeadSubject(its subject) instead, on a stream of its own, where
// `sfsync status` counts it and `sfsync retry --dead` sends it again.
const (
	// DeadPrefix is sfsync.dead.<original subject>.
	DeadPrefix = "sfsync.dead"
	// HeaderErrors is how many times the handlers failed on this message
	// and its predecessors.
	HeaderErrors = "Sfsync-Errors"
	// HeaderDeadSubject, HeaderDeadReason and HeaderDeadBy say where a dead
	// letter came from, the last error, and the worker that gave up.
	HeaderDeadSubject = "Sfsync-Dead-Subject"
	HeaderDeadReason  = "Sfsync-Dead-Reason"
	HeaderDeadBy      = "Sfsync-Dead-By"
)

// DeadSubject is where a message of subject goes when it is given up.
func DeadSubject(subject string) string { return DeadPrefix + "." + subject }

// Errors is the failure count a message carries (0 when none).
func Errors(h nats.Header) int {
	n, err := strconv.Atoi(h.Get(HeaderErrors))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// SetErrors marks msg, a message published again to retry, with the
// failures so far.
func SetErrors(msg *nats.Msg, n int) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header.Set(HeaderErrors, strconv.Itoa(n))
}

// DeadLetter is the dead letter of a message given up by worker "by"
// because of reason. The body and headers are kept (but the dedup id:
// the dead letter is a message of its own).
func DeadLetter(subject string, data []byte, h nats.Header, by, reason string) *nats.Msg {
	msg := nats.NewMsg(DeadSubject(subject))
	msg.Data = data
	for k, v := range h {
		if k != jetstream.MsgIDHeader {
			msg.Header[k] = append([]string(nil), v...)
		}
	}
	msg.Header.Set(HeaderDeadSubject, subject)
	msg.Header.Set(HeaderDeadReason, headerText(reason, 500))
	msg.Header.Set(HeaderDeadBy, by)
	return msg
}

// Revived is a dead letter sent again to its subject, its failure count
// started anew: `sfsync retry --dead`.
func Revived(data []byte, h nats.Header) (*nats.Msg, bool) {
	subject := h.Get(HeaderDeadSubject)
	if subject == "" {
		return nil, false
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	for k, v := range h {
		switch k {
		case HeaderDeadSubject, HeaderDeadReason, HeaderDeadBy, HeaderErrors, jetstream.MsgIDHeader:
		default:
			msg.Header[k] = append([]string(nil), v...)
		}
	}
	return msg, true
}

// headerText makes s fit a header value: one line of valid UTF-8, at most
// n bytes, cut on a character.
func headerText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
