package redisconn

// RoleEvery is roleEvery, for the pool's tests.
const RoleEvery = roleEvery
