"""Provider webhooks: who may call them (auth), SNS message verification (sns), anymail's
tracking events turned into ours (mapping, receivers), and the views that put it together.

The event-applying logic lives in `core.tracking`; this package only checks requests
and translates payloads.
"""
