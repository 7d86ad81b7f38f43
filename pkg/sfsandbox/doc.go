// Package sfsandbox is a faithful simulator of the Shopping Feed order API
// v1 (see ../shared/reference/shoppingfeed-api.md): the API sfsync talks
// to, served from memory, so that no test and no demo touches the real one.
// It runs in-process in tests (Start, or sfsandboxtest.New) and as the
// sfsandbox binary (services/sfsandbox), where merchants try their
// configuration before going live.
//
// # What it serves
//
//	POST /v1/auth                                 {"grant_type":"password","username","password"} → {"access_token","token_type"}
//	GET  /v1/me                                   the token's stores under _embedded.store[]
//	GET  /v1/ping                                 {"timestamp": …}, no token needed
//	POST /v1/store/{storeId}/order/{operation}    202 {"id": batch id, "_links":{"ticket":…}}, one ticket per order entry
//	GET  /v1/store/{storeId}/ticket?batchId=&page=&limit=   HAL collection, _embedded.ticket[], meta.processing
//	GET  /v1/store/{storeId}/ticket/{ticketId}    one ticket
//
// and, for tests and people (no token, no faults):
//
//	GET  /_sandbox/operations    every order entry received: store, operation, entry, batch, ticket (and its state now), time
//	GET  /_sandbox/requests      every /v1 request answered: method, path, status, time
//	POST /_sandbox/reset         forget batches, tickets and records; restore the configured faults
//	GET  /_sandbox/faults        the faults in force; PUT merges a JSON object into them
//	POST /_sandbox/fail-next     {"statuses":[503,429]}: answer the next /v1 requests with these statuses
//
// # Strictness
//
// Every error is application/problem+json with a detail. A missing or
// unknown token, or a token that does not own the store, is 403. An unknown
// operation, batch or ticket is 404. Malformed JSON, an entry without an
// order identifier (id, or reference and channelName), a field the
// operation does not take, a field of the wrong type, or more than
// MaxOrdersPerRequest entries is 400 and creates no batch.
//
// # Orders and tickets
//
// Tickets move scheduled → running → final over ScheduledFor and RunningFor
// (computed from the clock when read, so no goroutine runs). The outcome is
// decided when the batch is created, in this order:
//
//   - Orders: a store with known orders fails the ticket of any other order
//     ("order … not found"); a store without any accepts every order.
//   - A ship without trackingNumber fails, unless AllowShipWithoutTracking.
//   - A refund of an order on one of RefundUnsupportedChannels fails (the
//     channel is the entry's channelName, or the known order's).
//   - Faults.TicketFailureRate fails, then TicketCancelRate cancels, a
//     random share of the remaining tickets; StuckRate keeps a share running
//     StuckFor longer.
//
// A ticket's payload is the entry as received: an order sent by id has no
// reference in its payload (the reference leaves this unconfirmed, and the
// stricter reading catches a poller that relies on it).
//
// # Faults
//
// Faults (SetFaults, PUT /_sandbox/faults, or the SANDBOX_* variables)
// apply to /v1 requests before anything else: latency, random 5xx
// (500 and 503 as problem+json, 502 and 504 as a gateway's HTML), random
// 429 with X-RateLimit-Wait, and an enforced per-token rate limit (at most N
// requests in any span of Per; 429 with X-RateLimit-Wait, fractional
// seconds, until the oldest request leaves the span). FailNext answers the
// next requests with given statuses, for tests that need an exact sequence.
// A seed makes every random choice, id and outcome reproducible for a
// given order of requests.
//
// Config's zero value (plus Stores) is a fast sandbox for tests: no fault,
// no rate limit, tickets final at once. DefaultConfig is what the binary
// runs with.
package sfsandbox
