// Package prestashop reads a PrestaShop shop's database the way PrestaShop
// does, and owns the tables sfsync shares with the official Shopping Feed
// module (shoppingfeed_task_order, shoppingfeed_processlogger). It never
// writes to a core table. All of sfsync's SQL on shop and module tables is
// here.
//
// # Task states
//
// An order's update to Shopping Feed lives as one row of
// shoppingfeed_task_order, the module's own table, with sfsync's columns
// (sfsync_*) beside the module's. An update to the webhook target lives
// in sfsync_webhook_task, sfsync's table with the same columns (action
// SFSYNC_WEBHOOK), never in the module's: the module's cron must not see
// it, and the module's re-install resets its action ENUM. Its task id is
// its row id plus WebhookTaskIDBase, so a task id names its table. A row
// is in one of these states:
//
//	pending    action SYNC_STATUS (SFSYNC_WEBHOOK for the webhook target,
//	           PARTIAL_REFUND for order slips), sfsync_failed_at NULL, no
//	           live claim; due at update_at
//	claimed    pending, with sfsync_claim_owner and a sfsync_claim_until in
//	           the future: one sender prepares or sends it
//	sent       action CHECK_TICKET_SYNC_STATUS (ACTION_CHECK_TICKET_PARTIAL_REFUND
//	           for a partial refund) with batch_id and sfsync_token_id:
//	           Shopping Feed accepted it; the ticket poller follows its
//	           ticket (Shopping Feed's tasks only)
//	failed     sfsync_failed_at set, sfsync_error the reason; reported once
//	           (sfsync_reported_at) in the merchant's error report
//	done       the row is deleted, and sfsync_task_done keeps the order's
//	           last history id that went out (or needed nothing)
//
// Transitions, and the function that makes each:
//
//	(none)  → pending   UpsertTasks: the detector saved a mapped change
//	pending → pending   UpsertTasks: a newer change moves update_at and the
//	                    history ids (a failed row is re-queued the same way)
//	pending → claimed   ClaimTask (RenewClaims while in hand)
//	claimed → claimed   MarkPosted as a POST leaves (all or nothing, only
//	                    under the owner's claims), MarkPostedBatch as it
//	                    returns: the intent (sfsync_posted_*) that the next
//	                    attempt checks when the outcome never got recorded;
//	                    ClearPosted when Shopping Feed refused the POST
//	claimed → pending   ReleaseTask (held: tracking number, guard, token,
//	                    configuration), CountAttempt (a retryable error), or
//	                    the claim's lapse (a sender that died)
//	claimed → sent      RecordSent (with the batch id, after the POST); a
//	                    ship sent for an order now in a delivered-list
//	                    state also leaves a new pending row holding the
//	                    same change (SentTask.Then), due now, so deliver
//	                    follows in a later request
//	claimed → failed    FailTask (refused, or SEND_MAX_ATTEMPTS reached)
//	claimed → done      DropTask (the current state needs no update), or the
//	                    webhook delivered it
//	sent    → done      ApplyTicketResults: the ticket succeeded
//	sent    → failed    ApplyTicketResults: the ticket failed, expired, or
//	                    its batch is unknown
//	failed  → done      superseded: a newer update of the order succeeded
//	                    (SupersedeFailures)
//	failed  → pending   UpsertTasks (the merchant's next change) or
//	                    RequeueFailed (sfsync retry)
//
// A PARTIAL_REFUND task's history ids are order_slip ids: it sends the
// lines of the order's slips from sfsync_history_first to
// sfsync_history_last. A failed one is superseded by nothing (a slip is
// not the order's state): only sfsync retry sends it again, and a new
// slip makes a task of its own beside it.
//
// Every transition out of claimed checks the claim's owner, and one that a
// newer change reached meanwhile (last history id moved) leaves the row
// pending, so that the newer change is sent next.
//
// # The module's re-install
//
// The module re-creates its tables' keys on upgrades (2.0.3, 2.3.0) and
// resets: every index but the primary key is dropped, its unique key added
// again, and action rewritten to its six ENUM values. sfsync's columns
// survive; its indexes do not. Migrate adds back what is missing (CheckSchema
// lists it), at start with MIGRATE=auto, by `sfsync migrate`, and while
// running (pkg/service's schema watch). Schema version 1 had put
// SFSYNC_WEBHOOK in that ENUM: Migrate moves those rows (and any the
// module's reset blanked to the empty string) to sfsync_webhook_task, then takes the
// value out, so that the module's reset never fails nor blanks a row.
package prestashop
