"""Errors of the simulators.

SimulatorError
└── ScenarioError     a scenario cannot run with this configuration (no fence or camera in a zone)
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error raised by the simulators package."""


class ScenarioError(SimulatorError):
    """The configuration lacks what a scenario needs."""
