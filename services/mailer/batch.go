package mailer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/mailer/provider"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// BatchSuppression is implemented by a Suppression that answers many
// checks in one round trip (services/preferences Store). reasons[i] is
// Check's reason for the send to emails[i] in categories[i], "" when it
// is not blocked. The batch consumer uses it when the Suppression has it.
type BatchSuppression interface {
	CheckBatch(ctx context.Context, emails, categories []string) (reasons []string, err error)
}

const (
	// providerBatchSize is the most messages per BatchProvider call
	// (Resend's batch limit).
	providerBatchSize = 100
	// providerBatchCalls bounds the concurrent batch calls of one batch.
	providerBatchCalls = 4
	// singleSendConcurrency bounds the concurrent single provider calls
	// (or single-path fallbacks) of one batch.
	singleSendConcurrency = 16
)

// HandleBatch is the EMAILS consumer for bus.RunWorkQueueBatch: Handle for
// a batch of commands, with one statement per step of the send algorithm
// for the whole batch (key lookup, suppression, frequency cap, insert,
// claim, tracked links, mark sent) and one provider call per chunk of up
// to 100 messages when the provider is a provider.BatchProvider. The
// outcome of each message, and the result announced for it, are Handle's:
// one row and one provider call per idempotency key (copies of a key in
// the batch share the first one's outcome), withheld and capped sends as
// in Send, a retryable failure retried with backoff and failed on the last
// delivery, a bad command dead-lettered.
func (m *Mailer) HandleBatch(ctx context.Context, msgs []bus.Msg) []error {
	errs := make([]error, len(msgs))
	cmds := make([]*streams.EmailCommand, len(msgs))
	for i, msg := range msgs {
		cmd, err := decodeCommand(msg.Data)
		if err != nil {
			errs[i] = err
			continue
		}
		cmds[i] = cmd
	}
	items := m.sendBatch(ctx, cmds)
	for i, cmd := range cmds {
		if cmd != nil {
			errs[i] = m.outcome(ctx, cmd, items[i].res, items[i].err, msgs[i].NumDelivered)
		}
	}
	return errs
}

// batchItem is one command of a batch on its way through the algorithm.
type batchItem struct {
	cmd      *streams.EmailCommand
	category string
	// blocked is set when the suppression check withholds the send, for
	// reason.
	blocked bool
	reason  string
	row     dbsqlc.EmailSend
	c       composed
	sent    provider.Sent
	res     Result
	err     error
	done    bool
}

func (it *batchItem) finish(res Result, err error) {
	it.res, it.err, it.done = res, err, true
}

func (it *batchItem) key() string { return it.cmd.IdempotencyKey }

// alreadySent is the result of a command whose row is past queued.
func alreadySent(row dbsqlc.EmailSend) Result {
	return Result{EmailSendID: row.ID.String(), ResendID: deref(row.ResendID), Status: StatusSent}
}

// sendBatch is Send for many commands (nil entries are skipped); the
// result of command i is items[i].res and items[i].err.
func (m *Mailer) sendBatch(ctx context.Context, cmds []*streams.EmailCommand) []batchItem {
	items := make([]batchItem, len(cmds))
	follow := make([]int, len(cmds))
	leaderOf := map[string]int{}
	var leaders []int
	for i, cmd := range cmds {
		follow[i] = -1
		items[i].cmd = cmd
		if cmd == nil {
			continue
		}
		if k := cmd.IdempotencyKey; k != "" {
			if j, ok := leaderOf[k]; ok {
				// A copy of a command in this batch: it shares the
				// first one's outcome, as it would find its row.
				follow[i] = j
				continue
			}
			leaderOf[k] = i
		}
		leaders = append(leaders, i)
	}
	b := &sendBatch{m: m, q: dbsqlc.New(m.pool), items: items}
	b.run(ctx, leaders)
	for i, j := range follow {
		if j >= 0 {
			items[i].res, items[i].err = items[j].res, items[j].err
		}
	}
	return items
}

type sendBatch struct {
	m     *Mailer
	q     *dbsqlc.Queries
	items []batchItem
}

func (b *sendBatch) run(ctx context.Context, leaders []int) {
	// 1. Rows already holding the keys: sent (answer), or queued (a
	// crash, a retry, a concurrent twin: deliver under the lease).
	fresh, claim := b.lookup(ctx, leaders)
	// 2. Validation, suppression and frequency cap of the new commands.
	accepted, withheld := b.check(ctx, fresh)
	// 3. One insert for queued and withheld rows; queued rows come back
	// leased to this batch.
	deliver, more, fallback := b.insert(ctx, accepted, withheld)
	claim = append(claim, more...)
	// 4. Claim the queued rows found by key.
	deliver = append(deliver, b.claim(ctx, claim)...)
	// 5. Render, track, send, mark sent.
	b.deliver(ctx, deliver)
	// Anything unusual (a row id taken by a row without the key) runs the
	// single path, which reports it as it would.
	forEach(len(fallback), singleSendConcurrency, func(k int) {
		it := &b.items[fallback[k]]
		it.finish(b.m.Send(ctx, it.cmd))
	})
}

// lookup reads the rows holding the leaders' keys. It answers commands
// whose row is sent and returns the commands without a row (fresh) and
// those whose row is still queued (claim).
func (b *sendBatch) lookup(ctx context.Context, idx []int) (fresh, claim []int) {
	var keys []string
	for _, i := range idx {
		if k := b.items[i].key(); k != "" {
			keys = append(keys, k)
		}
	}
	byKey, err := b.rowsByKey(ctx, keys)
	for _, i := range idx {
		it := &b.items[i]
		if it.key() == "" {
			fresh = append(fresh, i)
			continue
		}
		if err != nil {
			it.finish(Result{}, fmt.Errorf("look up send by key: %w", err))
			continue
		}
		row, ok := byKey[it.key()]
		switch {
		case !ok:
			fresh = append(fresh, i)
		case row.Status != "queued":
			it.finish(alreadySent(row), nil)
		default:
			it.row = row
			claim = append(claim, i)
		}
	}
	return fresh, claim
}

func (b *sendBatch) rowsByKey(ctx context.Context, keys []string) (map[string]dbsqlc.EmailSend, error) {
	out := make(map[string]dbsqlc.EmailSend, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := b.q.MailerSendsByKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[deref(r.IdempotencyKey)] = r
	}
	return out, nil
}

// check validates the fresh commands and applies the suppression check
// and the frequency cap (spec 20 §1.2–1.4), answering the refused and
// capped ones. It returns, in batch order, the commands to insert queued
// (accepted) and the withheld ones.
func (b *sendBatch) check(ctx context.Context, idx []int) (accepted, withheld []int) {
	var checked []int // to run the suppression check on
	for _, i := range idx {
		it := &b.items[i]
		if it.cmd.To == "" {
			it.finish(Result{}, errcode.Invalid("to: is required"))
			continue
		}
		tpl, ok := b.m.templates.Get(it.cmd.Template)
		if !ok {
			it.finish(Result{}, errcode.NotFound("Unknown template: "+it.cmd.Template))
			continue
		}
		it.category = it.cmd.Category
		if it.category == "" {
			it.category = tpl.Category
		}
		if !it.cmd.SkipPreferenceCheck && b.m.supp != nil {
			checked = append(checked, i)
		}
	}
	b.suppress(ctx, checked)
	capCounts := b.capCounts(ctx, idx)
	// Sends accepted so far in this batch, by normalised recipient: the
	// cap counts them as the single path counts rows inserted before.
	before := map[string][]string{}
	for _, i := range idx {
		it := &b.items[i]
		switch {
		case it.done:
			continue
		case it.blocked:
			withheld = append(withheld, i)
			continue
		}
		to := strings.ToLower(it.cmd.To)
		if !it.cmd.SkipPreferenceCheck {
			if limit, _, only, ok := b.m.capScope(it.cmd.Category); ok {
				n := capCounts[i]
				for _, c := range before[to] {
					if only == nil || c == *only {
						n++
					}
				}
				if n >= int64(limit) {
					b.m.log.Info("send skipped by the frequency cap", "to", it.cmd.To, "template", it.cmd.Template)
					b.m.metrics.sends.WithLabelValues(StatusSkipped, b.m.provider.Name()).Inc()
					it.finish(Result{Status: StatusSkipped, Reason: "frequency_capped"}, nil)
					continue
				}
			}
		}
		before[to] = append(before[to], it.category)
		accepted = append(accepted, i)
	}
	return accepted, withheld
}

// suppress runs the suppression check on the items idx, in one call when
// the Suppression is a BatchSuppression. A blocked item is marked with its
// reason; a failed check answers the item with the error.
func (b *sendBatch) suppress(ctx context.Context, idx []int) {
	if len(idx) == 0 {
		return
	}
	if bs, ok := b.m.supp.(BatchSuppression); ok {
		emails, categories := make([]string, len(idx)), make([]string, len(idx))
		for k, i := range idx {
			emails[k], categories[k] = b.items[i].cmd.To, b.items[i].category
		}
		reasons, err := bs.CheckBatch(ctx, emails, categories)
		if err == nil && len(reasons) != len(idx) {
			err = fmt.Errorf("%d answers for %d checks", len(reasons), len(idx))
		}
		for k, i := range idx {
			if err != nil {
				b.items[i].finish(Result{}, fmt.Errorf("suppression check: %w", err))
			} else if reasons[k] != "" {
				b.items[i].blocked, b.items[i].reason = true, reasons[k]
			}
		}
		return
	}
	forEach(len(idx), singleSendConcurrency, func(k int) {
		it := &b.items[idx[k]]
		blocked, reason, err := b.m.supp.Check(ctx, it.cmd.To, it.category)
		switch {
		case err != nil:
			it.finish(Result{}, fmt.Errorf("suppression check: %w", err))
		case blocked:
			it.blocked, it.reason = true, reason
		}
	})
}

// capCounts reads, in one statement, the frequency-cap count of each item
// of idx that is capped (not withheld, not skipping the check); the
// counts are keyed by item index. A failed read answers those items.
func (b *sendBatch) capCounts(ctx context.Context, idx []int) map[int]int64 {
	var capped []int
	var p dbsqlc.MailerCapCountsParams
	now := b.m.now().UTC()
	for _, i := range idx {
		it := &b.items[i]
		if it.done || it.blocked || it.cmd.SkipPreferenceCheck {
			continue
		}
		_, window, only, ok := b.m.capScope(it.cmd.Category)
		if !ok {
			continue
		}
		capped = append(capped, i)
		p.ToEmails = append(p.ToEmails, it.cmd.To)
		p.Sinces = append(p.Sinces, now.Add(-window))
		if only != nil {
			p.Categories = append(p.Categories, *only)
		} else {
			p.Categories = append(p.Categories, "")
		}
	}
	out := make(map[int]int64, len(capped))
	if len(capped) == 0 {
		return out
	}
	rows, err := b.q.MailerCapCounts(ctx, p)
	if err != nil {
		for _, i := range capped {
			b.items[i].finish(Result{}, fmt.Errorf("frequency cap: %w", err))
		}
		return out
	}
	for _, r := range rows {
		if int(r.I) < len(capped) {
			out[capped[r.I]] = r.N
		}
	}
	return out
}

// insert stores the accepted sends queued (holding their keys, leased to
// this batch) and the withheld ones failed, in one statement. It answers
// the withheld commands and returns the commands to deliver, those whose
// key turned out to be held by a queued row (claim), and those to run
// through the single path (fallback).
func (b *sendBatch) insert(ctx context.Context, accepted, withheld []int) (deliver, claim, fallback []int) {
	if len(accepted)+len(withheld) == 0 {
		return nil, nil, nil
	}
	now := b.m.now().UTC()
	p := dbsqlc.MailerSendInsertBatchParams{Provider: b.m.provider.Name(), LeaseUntil: now.Add(b.m.cfg.Lease), At: now}
	ids := map[int]uuid.UUID{}
	add := func(i int, status, key, reason string) {
		it := &b.items[i]
		cmd := it.cmd
		id := uuid.Must(uuid.NewV7())
		if status == "queued" && cmd.ID != "" {
			if cid, err := uuid.Parse(cmd.ID); err == nil {
				id = cid
			}
		}
		ids[i] = id
		from := cmd.From
		if from == "" {
			from = b.m.cfg.From
		}
		p.Ids = append(p.Ids, id.String())
		p.IdempotencyKeys = append(p.IdempotencyKeys, key)
		p.JourneyStateIds = append(p.JourneyStateIds, uuidText(cmd.JourneyStateID))
		p.UserIds = append(p.UserIds, cmd.UserID)
		p.ContactIds = append(p.ContactIds, uuidText(cmd.ContactID))
		p.TemplateKeys = append(p.TemplateKeys, cmd.Template)
		p.FromEmails = append(p.FromEmails, from)
		p.ToEmails = append(p.ToEmails, cmd.To)
		p.Subjects = append(p.Subjects, cmd.Subject)
		p.Categories = append(p.Categories, it.category)
		p.Statuses = append(p.Statuses, status)
		p.Reasons = append(p.Reasons, reason)
	}
	for _, i := range accepted {
		add(i, "queued", b.items[i].key(), "")
	}
	for _, i := range withheld {
		// A withheld send holds no key (spec 20 §1.2.4.1).
		add(i, "failed", "", b.items[i].reason)
	}
	rows, err := b.q.MailerSendInsertBatch(ctx, p)
	if err != nil {
		for _, i := range accepted {
			b.items[i].finish(Result{}, fmt.Errorf("insert send: %w", err))
		}
		for _, i := range withheld {
			b.items[i].finish(Result{}, fmt.Errorf("record withheld send: %w", err))
		}
		return nil, nil, nil
	}
	byID := make(map[uuid.UUID]dbsqlc.EmailSend, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, i := range withheld {
		it := &b.items[i]
		row, ok := byID[ids[i]]
		if !ok {
			fallback = append(fallback, i)
			continue
		}
		b.m.log.Info("send withheld", "emailSendId", row.ID, "to", it.cmd.To, "reason", it.reason)
		status := StatusUnsubscribed
		if it.reason == "suppressed" {
			status = StatusSuppressed
		}
		b.m.metrics.sends.WithLabelValues(status, b.m.provider.Name()).Inc()
		it.finish(Result{EmailSendID: row.ID.String(), Status: status, Reason: it.reason}, nil)
	}
	var taken []int // a concurrent twin holds the key (or the id)
	for _, i := range accepted {
		if row, ok := byID[ids[i]]; ok {
			b.items[i].row = row
			deliver = append(deliver, i)
		} else {
			taken = append(taken, i)
		}
	}
	if len(taken) == 0 {
		return deliver, nil, fallback
	}
	var keys []string
	for _, i := range taken {
		if k := b.items[i].key(); k != "" {
			keys = append(keys, k)
		}
	}
	byKey, err := b.rowsByKey(ctx, keys)
	for _, i := range taken {
		it := &b.items[i]
		if err != nil {
			it.finish(Result{}, fmt.Errorf("read the send holding key %q: %w", it.key(), err))
			continue
		}
		row, ok := byKey[it.key()]
		switch {
		case it.key() == "" || !ok:
			fallback = append(fallback, i)
		case row.Status != "queued":
			it.finish(alreadySent(row), nil)
		default:
			it.row = row
			claim = append(claim, i)
		}
	}
	return deliver, claim, fallback
}

// uuidText is s when it is a UUID, else "" (NULL).
func uuidText(s string) string {
	if id, err := uuid.Parse(s); err == nil {
		return id.String()
	}
	return ""
}

// claim takes the lease of queued rows found by key; those another
// attempt holds are answered as deliver answers them.
func (b *sendBatch) claim(ctx context.Context, idx []int) (claimed []int) {
	if len(idx) == 0 {
		return nil
	}
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = b.items[i].row.ID.String()
	}
	at := b.m.now().UTC()
	until := at.Add(b.m.cfg.Lease)
	got, err := b.q.MailerSendClaimBatch(ctx, dbsqlc.MailerSendClaimBatchParams{Until: &until, Now: &at, Ids: ids})
	if err != nil {
		for _, i := range idx {
			b.items[i].finish(Result{}, fmt.Errorf("claim send %s: %w", b.items[i].row.ID, err))
		}
		return nil
	}
	mine := make(map[uuid.UUID]bool, len(got))
	for _, id := range got {
		mine[id] = true
	}
	var busy []int
	var busyIDs []string
	for _, i := range idx {
		if mine[b.items[i].row.ID] {
			claimed = append(claimed, i)
		} else {
			busy = append(busy, i)
			busyIDs = append(busyIDs, b.items[i].row.ID.String())
		}
	}
	if len(busy) == 0 {
		return claimed
	}
	leases, err := b.q.MailerSendLeases(ctx, busyIDs)
	byID := make(map[uuid.UUID]dbsqlc.MailerSendLeasesRow, len(leases))
	for _, l := range leases {
		byID[l.ID] = l
	}
	for _, i := range busy {
		it := &b.items[i]
		id := it.row.ID
		st, ok := byID[id]
		switch {
		case err != nil:
			it.finish(Result{}, fmt.Errorf("read send %s: %w", id, err))
		case !ok:
			it.finish(Result{}, fmt.Errorf("read send %s: no longer stored", id))
		case st.Status == "failed":
			it.finish(Result{EmailSendID: id.String(), Status: StatusFailed}, fmt.Errorf("%w: %s", ErrSendFailed, id))
		case st.Status != "queued":
			it.finish(Result{EmailSendID: id.String(), Status: StatusSent}, nil)
		default:
			it.finish(Result{}, &InProgressError{Until: derefTime(st.LeaseUntil)})
		}
	}
	return claimed
}

// deliver renders, tracks and sends the leased rows of idx and marks them
// sent, as Mailer.deliver does one row; a retryable failure releases the
// row's lease for the retry.
func (b *sendBatch) deliver(ctx context.Context, idx []int) {
	if len(idx) == 0 {
		return
	}
	m := b.m
	defer b.release(ctx, idx)
	// Render (CPU) on every core.
	composeErrs := make([]error, len(idx))
	forEach(len(idx), runtime.GOMAXPROCS(0), func(k int) {
		it := &b.items[idx[k]]
		it.c, composeErrs[k] = m.compose(it.cmd, it.row)
	})
	var ready []int
	for k, i := range idx {
		it := &b.items[i]
		err := composeErrs[k]
		var ce *composeError
		switch {
		case err == nil:
			ready = append(ready, i)
		case errors.As(err, &ce):
			it.finish(Result{EmailSendID: it.row.ID.String(), Status: StatusFailed}, m.fail(ctx, b.q, it.row, ce.reason, ce.err))
		default:
			it.finish(Result{}, err)
		}
	}
	if len(ready) == 0 {
		return
	}
	var links dbsqlc.MailerTrackedLinksInsertBatchParams
	for _, i := range ready {
		it := &b.items[i]
		sendID := it.row.ID.String()
		for k, id := range it.c.linkIDs {
			links.Ids = append(links.Ids, id.String())
			links.EmailSendIds = append(links.EmailSendIds, sendID)
			links.Urls = append(links.Urls, it.c.urls[k])
		}
	}
	if len(links.Ids) > 0 {
		links.At = m.now().UTC()
		if err := b.q.MailerTrackedLinksInsertBatch(ctx, links); err != nil {
			for _, i := range ready {
				b.items[i].finish(Result{}, fmt.Errorf("store tracked links: %w", err))
			}
			return
		}
	}
	msgs := make([]provider.Message, len(ready))
	for k, i := range ready {
		msgs[k] = b.items[i].c.msg
	}
	sent, errs := m.provide(ctx, msgs)
	var ok []int
	for k, i := range ready {
		it := &b.items[i]
		switch err := errs[k]; {
		case err == nil:
			it.sent = sent[k]
			ok = append(ok, i)
		case provider.Retryable(err):
			it.finish(Result{}, fmt.Errorf("send %s: %w", it.row.ID, err))
		default:
			it.finish(Result{EmailSendID: it.row.ID.String(), Status: StatusFailed}, m.fail(ctx, b.q, it.row, "provider", err))
		}
	}
	if len(ok) == 0 {
		return
	}
	name := m.provider.Name()
	p := dbsqlc.MailerSendMarkSentBatchParams{At: m.now().UTC(), Provider: name}
	for _, i := range ok {
		p.Ids = append(p.Ids, b.items[i].row.ID.String())
		p.ResendIds = append(p.ResendIds, b.items[i].sent.ID)
	}
	if _, err := b.q.MailerSendMarkSentBatch(ctx, p); err != nil {
		for _, i := range ok {
			b.items[i].finish(Result{}, fmt.Errorf("mark %s sent: %w", b.items[i].row.ID, err))
		}
		return
	}
	for _, i := range ok {
		it := &b.items[i]
		m.metrics.sends.WithLabelValues(StatusSent, name).Inc()
		it.finish(Result{EmailSendID: it.row.ID.String(), ResendID: it.sent.ID, Status: StatusSent}, nil)
	}
}

// release lets the next attempt claim at once the rows of idx that ended
// with a retryable error (Mailer.deliver's deferred release).
func (b *sendBatch) release(ctx context.Context, idx []int) {
	var ids []string
	for _, i := range idx {
		if err := b.items[i].err; err != nil && !errors.Is(err, ErrSendFailed) {
			ids = append(ids, b.items[i].row.ID.String())
		}
	}
	if len(ids) > 0 {
		_ = b.q.MailerSendReleaseBatch(context.WithoutCancel(ctx), ids)
	}
}

// provide hands msgs to the provider: in chunks of up to 100 per call
// when it batches safely (provider.SafeBatch), else one call per message
// (concurrently).
// A batch call failing for a reason worth retrying fails its chunk with
// that error; any other failure may be one message's (an invalid address
// fails the whole batch), so the chunk is sent again one message per
// call, each classified on its own as the single path does.
func (m *Mailer) provide(ctx context.Context, msgs []provider.Message) ([]provider.Sent, []error) {
	sent := make([]provider.Sent, len(msgs))
	errs := make([]error, len(msgs))
	bp, ok := provider.SafeBatch(m.provider)
	if !ok || len(msgs) == 1 {
		m.sendEach(ctx, msgs, sent, errs)
		return sent, errs
	}
	chunks := (len(msgs) + providerBatchSize - 1) / providerBatchSize
	forEach(chunks, providerBatchCalls, func(c int) {
		lo, hi := c*providerBatchSize, min((c+1)*providerBatchSize, len(msgs))
		chunk := msgs[lo:hi]
		got, err := bp.SendBatch(ctx, chunk)
		if err == nil && len(got) != len(chunk) {
			err = &provider.Error{Retryable: true, Err: fmt.Errorf("the provider answered %d results for %d messages", len(got), len(chunk))}
		}
		switch {
		case err == nil:
			copy(sent[lo:hi], got)
		case provider.Retryable(err):
			for i := lo; i < hi; i++ {
				errs[i] = err
			}
		default:
			m.log.Warn("batch send refused, sending its messages one by one", "size", len(chunk), "err", err)
			m.sendEach(ctx, chunk, sent[lo:hi], errs[lo:hi])
		}
	})
	return sent, errs
}

// sendEach sends msgs one per call, concurrently.
func (m *Mailer) sendEach(ctx context.Context, msgs []provider.Message, sent []provider.Sent, errs []error) {
	forEach(len(msgs), singleSendConcurrency, func(i int) {
		sent[i], errs[i] = m.provider.Send(ctx, msgs[i])
	})
}

// forEach calls f(0..n-1) on up to limit goroutines.
func forEach(n, limit int, f func(i int)) {
	switch {
	case n == 0:
		return
	case n == 1 || limit <= 1:
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, limit) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}
