package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// indexLogin records the session's new token in the user's index in place of
// the old one, after every renewal of a logged-in session.
func (a *App) indexLogin(r *http.Request, user, oldToken string) error {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	oldID := ""
	if oldToken != "" {
		oldID = sessions.ID(oldToken)
	}
	e := a.indexEntry(r)
	if err := a.Index.Add(ctx, user, e, oldID, a.Sessions.Deadline(ctx)); errors.Is(err, sessionindex.ErrRevoked) {
		a.Log.InfoContext(ctx, "session revoked as it was renewed", "session", a.LogID(token), "user", user)
		notKept(ctx)
		return errEndedMeanwhile
	} else if err != nil {
		return fmt.Errorf("index session %s: %w", a.LogID(token), err)
	}
	if st, ok := stateOf(ctx); ok {
		st.indexedFor = user
	}
	return nil
}

// indexEntry is the index entry of the request's session as a login writes it.
func (a *App) indexEntry(r *http.Request) sessionindex.Entry {
	ctx := r.Context()
	// Created is the session's own start, as the profile shows it (a login
	// or a renewal keeps the session and its origin), not this token's.
	o, ok := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin)
	if !ok {
		o = a.recordOrigin(ctx)
	}
	return sessionindex.Entry{
		Token:     a.Sessions.Token(ctx),
		Created:   o.At.UnixMilli(),
		LastSeen:  time.Now().UnixMilli(),
		IP:        a.sessionClientIP(r),
		UserAgent: truncate(r.UserAgent(), 256),
		Instance:  a.Instance,
	}
}

// reindex writes again the session's entry in user's index, which is
// missing (the index deleted or started again) or holds something that is
// not an entry (changed by hand with redis-cli), so the session is on its
// user's list and revocable again. A failure leaves it as it is: the count
// stands.
func (a *App) reindex(r *http.Request, user string) {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	a.Log.WarnContext(ctx, "the session's index entry was missing or could not be read: written again",
		"session", a.LogID(token), "user", user, "key", sessions.IndexKey(user))
	if err := a.Index.Add(ctx, user, a.indexEntry(r), "", a.Sessions.Deadline(ctx)); err != nil {
		a.Log.WarnContext(ctx, "the session's index entry not written again", "session", a.LogID(token), "user", user, "err", err)
	}
}

// notKept: this request's session is not saved and no cookie is set (a
// renewed session that could not be listed, or was revoked as it renewed).
func notKept(ctx context.Context) {
	if st, ok := stateOf(ctx); ok {
		st.abandon()
	}
}

// keptToken: this request's login keeps the loaded token (see
// sessionState.keptToken).
func keptToken(ctx context.Context) {
	if st, ok := stateOf(ctx); ok {
		st.keptToken = true
	}
}

// unindex drops a session from its user's index (logout, or a login as
// someone else).
func (a *App) unindex(ctx context.Context, user, token string) error {
	if user == "" || token == "" {
		return nil
	}
	if err := a.Index.Remove(ctx, user, sessions.ID(token)); err != nil {
		return fmt.Errorf("unindex session %s: %w", a.LogID(token), err)
	}
	return nil
}

// sessionClientIP is the client address shown on the sessions page: the
// one clientIP finds (X-Forwarded-For only from -trusted-proxies).
func (a *App) sessionClientIP(r *http.Request) string {
	if ip := a.clientIP(r); ip.IsValid() {
		return ip.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
