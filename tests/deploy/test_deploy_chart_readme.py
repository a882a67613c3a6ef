"""The chart's README documents every value of values.yaml (each leaf, by its dotted path)."""
from __future__ import annotations

from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "motcua"


def leaves(node, path=()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaves(value, path + (key,))
    else:
        yield ".".join(path)


def test_every_value_is_documented_in_the_chart_readme():
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    rows = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    missing = [leaf for leaf in leaves(values) if leaf not in rows]
    assert missing == [], f"undocumented values (regenerate the table of README.md): {missing}"
    undescribed = [line for line in readme.splitlines() if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert undescribed == []
