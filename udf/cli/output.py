"""What a command tells its user: one line on standard output per thing it did.

Kept apart from the parser so that command modules do not import :mod:`udf.cli`, which loads them.
"""


def say(message: str) -> None:
    """Tell the user what a command did (what it wrote, where to look): one line on standard output."""
    print(message, flush=True)
