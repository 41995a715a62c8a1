"""The core every channel shares: the outbox (claim, the one writer of status, retries,
lanes, schedules, the sweep) and the one sink for provider events (`tracking`)."""
