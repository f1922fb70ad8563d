"""The interfaces people and programs use: the HTTP API (``interfaces.api``), later the console.

They parse requests and render answers; every rule lives in :mod:`service`.
"""
