"""Offline trust: pinned signers (trust store), signature checks, and the site's own gate passes.

Nothing here is imported by the package root on purpose: the credential parsers import
`gate.trust.store` and `gate.trust.keys`, and the pass tools import the parsers.
"""
