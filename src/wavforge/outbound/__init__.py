"""Every request wavforge itself makes: callback POSTs and import downloads.

httpx errors are translated here and nowhere else.
"""
