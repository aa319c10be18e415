"""The process inside the UDF sandbox (:mod:`local_backend.tiles.sandbox`): runs one UDF on tile after tile.

Started by :class:`local_backend.tiles.sandbox.Sandbox` as ``python -m local_backend.tiles.udf_runner FOLDER``
in a bubblewrap sandbox whose only writable folder is ``FOLDER`` (``udf-code.txt`` and ``udf-context.json``
in it). Each line on standard
input names an input and an output file there (``{"input": "in-1.npz", "output": "out-1.npz"}``); the runner reads
the tile (:func:`~local_backend.tiles.array_files.read_array`), runs the UDF, writes the result and answers one JSON line
(``{"ok": true}`` or ``{"error": "TypeError: ..."}``) on the original standard output. What the UDF prints goes to
standard error, so it cannot forge an answer.
"""

import json
import os
import sys
from pathlib import Path


def main(folder: Path) -> int:
    """Serve requests until standard input closes."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the UDF's print() goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    from local_backend.errors import UdfRuntimeError
    from local_backend.tiles.array_files import read_array, write_array
    from local_backend.tiles.windows import run_udf_on_array

    code = (folder / "udf-code.txt").read_text()
    context = json.loads((folder / "udf-context.json").read_text())
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, object]
        try:
            tile = read_array(folder / Path(request["input"]).name)
            write_array(run_udf_on_array(tile, code, context), folder / Path(request["output"]).name)
            answer = {"ok": True}
        except UdfRuntimeError as exc:
            answer = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the server as the tile's failure
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
