"""Who may use the service: staff accounts, the groups and their permissions, and the
throttle on failed authentication."""
