#!/usr/bin/env python3
"""Print the first key of EXPECTED_JSON whose FUNCTION(key) differs from its value."""

import importlib
import json
import os
import sys

sys.path.insert(0, os.getcwd())  # the module is in the repository, not next to this script

module, function, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
fn = getattr(importlib.import_module(module), function)
for key, want in expected.items():
    got = fn(int(key))
    if got != want:
        print(f"{key}: got {got!r}, want {want!r}")
        break
else:
    print("no difference")
