package sessionindex

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable: sessions kept in one process's memory (-store memory)
// have no shared list to show or revoke.
var ErrUnavailable = errors.New("sessionindex: no shared index of sessions when they are kept in memory")

// None is the index of memory store mode: Add and Remove do nothing, the rest
// says ErrUnavailable.
type None struct{}

// Add implements the index: nothing to record.
func (None) Add(context.Context, string, Entry, string, time.Time) error { return nil }

// Remove implements the index: nothing to remove.
func (None) Remove(context.Context, string, string) error { return nil }

// KeepIfListed implements the index: a session in memory has no entry to lose.
func (None) KeepIfListed(context.Context, string, string, string) (bool, error) { return true, nil }

// List says ErrUnavailable.
func (None) List(context.Context, string) ([]Entry, error) { return nil, ErrUnavailable }

// Revoke says ErrUnavailable.
func (None) Revoke(context.Context, string, string) (Revoked, error) {
	return Revoked{}, ErrUnavailable
}

// RevokeOthers says ErrUnavailable.
func (None) RevokeOthers(context.Context, string, string) (Revoked, error) {
	return Revoked{}, ErrUnavailable
}

// Key says there is no index key.
func (None) Key(string) (string, bool) { return "", false }
