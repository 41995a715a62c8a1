"""The outbox: the message table is the queue. `lifecycle` is the one writer of a
message's status; `drain` claims a lane's due rows and hands them on; `retries`, `wakeups`,
`sweep`, `leases`, `scheduling` and `simulator` serve it."""
