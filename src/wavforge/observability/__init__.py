"""What a running wavforge tells its operators: Prometheus metrics and JSON log lines.

``metrics`` defines every metric once (the core counts an event after the transaction that
made it true has committed); ``queue_depth`` reads the backlog from the database at
scrape time; ``requests`` is the ASGI layer that times each request and gives it an id;
``logs`` formats log lines and carries that id into them, in the API and in the worker.

Importing this package costs nothing: the core imports ``metrics`` only, and
nothing here but ``requests`` knows about HTTP.
"""
