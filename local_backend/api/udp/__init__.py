"""User-defined processes: store, namespaces, and their expansion into the graph that runs.

The per-user store (``/process_graphs``), namespaces (URL, file, offline catalogue) and the expansion of calls to them
into the process graph that runs.
"""
