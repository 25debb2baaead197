package redisconn

// RoleEvery is roleEvery, for the pool's tests.
const RoleEvery = roleEvery

// LimitLazily is limitLazily, for its tests.
var LimitLazily = limitLazily
