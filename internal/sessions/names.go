package sessions

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ID names a session on pages, in the index and in channels: 16 hex digits of
// SHA-256 of the token, which cannot be turned back into the token.
func ID(token string) string {
	// Hashed from an array of its own and hex-encoded into another: a
	// token's bytes and hex.EncodeToString's buffer were two allocations,
	// and every count names its session (TestIDIsSHA256).
	var buf [64]byte
	sum := sha256.Sum256(append(buf[:0], token...))
	var id [16]byte
	hex.Encode(id[:], sum[:8])
	return string(id[:])
}

// IndexKey is the Redis hash listing a user's sessions (internal/sessionindex).
// Usernames cannot hold ':', so it never collides with the account key.
func IndexKey(username string) string { return "user:" + username + ":sessions" }

// RevokedKey is the Redis hash of the user's session ids revoked in the last
// minute (internal/sessionindex): a renewal under way does not carry one on.
func RevokedKey(username string) string { return "user:" + username + ":revoked" }

// CountedKey holds the request id of the session's last count through a
// proxy and the count it made, "<id> <count>", for CountedFor (IncrViews).
// Named by ID: a new token (a login, a renewal) is a new key.
func CountedKey(token string) string { return "counted:" + ID(token) }

// SessionChannel is the pub/sub channel of one session's live events
// (MsgCountPrefix and a count, MsgEnded). It is named by ID, never by token.
func SessionChannel(id string) string { return SessionChannelPrefix + id }

// SessionChannelPrefix starts every SessionChannel (scripts that build
// channel names from an index are given it).
const SessionChannelPrefix = "live:sess:"

// UserChannel is the pub/sub channel that says a user's list of sessions
// changed (a login, a logout, a revoke).
func UserChannel(username string) string { return "live:user:" + username }

// Messages published on the live channels. The Lua scripts that publish
// them receive them as arguments, so these are their only spelling.
const (
	MsgCountPrefix = "count "   // SessionChannel: the new view count follows
	MsgEnded       = "ended"    // SessionChannel: the session ended (revoked, logged out, renewed)
	MsgSessions    = "sessions" // UserChannel: the list changed
	MsgLab         = "lab"      // SessionChannel: another browser added to the session's lab record
	// BrowsersChannel: an address's new list of browsers (JSON) follows.
	MsgBrowsersPrefix = "browsers "
)

// CutSessionKey is CutKey(Key(token)) in one allocation: the session key
// of a token as a page may show it.
func CutSessionKey(token string) string {
	if len(token) > 6 {
		return Prefix + token[:6] + "…"
	}
	return Prefix + token
}

// CutKey is a key as a page may show it: a session key's token cut to its
// first six characters (a full token is a password), any other key whole.
func CutKey(key string) string {
	if t, ok := strings.CutPrefix(key, Prefix); ok && len(t) > 6 {
		return Prefix + t[:6] + "…"
	}
	return key
}
