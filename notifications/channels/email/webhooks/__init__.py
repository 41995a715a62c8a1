"""Provider webhooks: who may call them (auth), SNS message verification (sns), anymail's
tracking events turned into ours (mapping), and the views that put it together.

The event-applying logic lives in `core.tracking`; this package only checks requests
and translates payloads. It connects no signal receiver: the service's receivers (the
suppression that follows provider events, inbound mail) are all in
`notifications/receivers.py`.
"""
