"""Fail unless every installed structgrad distribution came from this checkout, non-editable.

Run by the noxfile inside each session's venv after installing (PEP 610 direct_url.json).
"""

import importlib.metadata as metadata
import json
import sys

bad = []
for dist in metadata.distributions():
    name = (dist.metadata["Name"] or "").lower()
    if not name.startswith("structgrad-"):
        continue
    raw = dist.read_text("direct_url.json")
    info = json.loads(raw) if raw else {}
    from_checkout = info.get("url", "").startswith("file://")
    if not from_checkout or info.get("dir_info", {}).get("editable"):
        bad.append(name)
if bad:
    sys.exit("not installed from the checkout (or editable): " + ", ".join(bad))
