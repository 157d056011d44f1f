"""Pure crypto and formats: envelopes (CMS), PKCS#12, certificates.

Nothing here knows about the key store, the command line, HTTP or Django.
"""
