"""signdigits: a reproducible DVC pipeline around a hand-written NumPy network for sign-language digits.

Reusable code lives here; the scripts in ``stages/`` are thin wrappers that read their own section of
params.yaml, call into this package and write their outputs atomically.
"""

__version__ = "0.1.0"
