"""The archive engine: plain Python and boto3, no Home Assistant imports.

Everything here is synchronous and thread-safe; the Home Assistant shell calls it
from the executor.
"""
