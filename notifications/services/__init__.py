"""Writes and side effects; views, admin actions and tasks call these and nothing lower."""
