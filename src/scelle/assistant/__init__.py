"""The local assistant: the workstation's side of deposits and openings, where the keys
and the plaintext live. It uses the store and the platform's client; the command line
calls it."""
