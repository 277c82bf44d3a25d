"""The edge agent: one per site, between the site's devices and the hub.

It adapts each device format to a normalised event (PROTOCOL 2.1), drops
duplicates, correlates fence and camera, keeps every event until the hub
commits it, relays device statuses and drives the site's speakers.
"""
