"""The command line's start: the cycle collector is off while the command modules load, and
on again, with what they loaded frozen out of its sight, once they have."""

from __future__ import annotations

import json
import subprocess
import sys


def test_collector_is_on_after_the_commands_load_with_their_objects_frozen():
    probe = (
        "import gc, json, sys\n"
        "import graphsel\n"
        "before = gc.get_freeze_count()\n"
        "seen = []\n"
        "gc.callbacks.append(lambda phase, info: seen.append(phase))\n"
        "import graphsel.cli\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count() - before,"
        " 'collections': len(seen)}))\n")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    state = json.loads(out)
    assert state["enabled"] is True
    assert state["frozen"] > 10_000  # the modules' objects, frozen once they are loaded
    assert state["collections"] == 0  # none ran while they loaded
