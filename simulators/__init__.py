"""Simulated field devices and scenarios, for tests and demos.

They speak the field side of the protocol (PROTOCOL 1) exactly as real
devices would: fences and cameras publish reports and retained statuses with
a last will, speakers answer ``play`` and ``stop`` with ``state``.
"""
