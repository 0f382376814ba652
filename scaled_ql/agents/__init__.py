"""Agents built on the pure Scaled QL core.

Importing this package imports nothing: each agent package decides what it loads eagerly.
Acme-dependent modules (builders, learners, actors) are imported by their full path only.
"""
