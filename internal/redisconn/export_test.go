package redisconn

import "github.com/redis/rueidis"

// RoleEvery is roleEvery, for the pool's tests.
const RoleEvery = roleEvery

// LimitLazily is limitLazily, for its tests.
var LimitLazily = limitLazily

// SetGroupCommit turns the group commit of c (a Sentinel client from
// Connect) on or off, for the test that shows what it prevents.
func SetGroupCommit(c rueidis.Client, on bool) {
	if b, ok := c.(bounded); ok {
		c = b.Client
	}
	if g, ok := c.(*failoverGate); ok {
		g.acks.off.Store(!on)
	}
}
