"""A Django app that renders, sends, audits and tracks email notifications.

Public API: `notifications.channels.email.sending.send_mail_template` and `send_simple_mail`.
"""
